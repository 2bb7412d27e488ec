// Command send-client is in the real-cluster tests' session image (never in the operator's): the
// suite runs it in a pod of its own, as an application would call a connection's send API, to
// prove the path an application takes: the Service's name through the cluster DNS, kube-proxy's
// rules to the session pod, and a projected ServiceAccount token the session reviews.
//
// Usage: send-client URL TOKEN_FILE BODY
// It POSTs BODY (JSON) to URL with the token as a bearer token and prints one line,
// "STATUS BODY"; exit 0 whenever an answer came (the suite judges the status), 1 otherwise.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: send-client URL TOKEN_FILE BODY")
		os.Exit(2)
	}
	token, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "send-client:", err)
		os.Exit(1)
	}
	req, err := http.NewRequest(http.MethodPost, os.Args[1], strings.NewReader(os.Args[3]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "send-client:", err)
		os.Exit(1)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 40 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "send-client:", err)
		os.Exit(1)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		fmt.Fprintln(os.Stderr, "send-client:", err)
		os.Exit(1)
	}
	fmt.Printf("%d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
}
