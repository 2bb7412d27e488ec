package localrunner

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The test binary doubles as the program the pods run: with helperEnv set (the runner's
// ExtraEnv) it is a tiny "container" steered by its arguments, so no build step is needed.
const helperEnv = "LOCALRUNNER_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helperMain(args []string) int {
	fs := flag.NewFlagSet("helper", flag.ContinueOnError)
	health := fs.String("health", "", "address serving /readyz")
	metrics := fs.String("metrics", "", "a second address to bind")
	out := fs.String("out", "", "folder for env.txt, args.txt, pid, history, ...")
	exitCode := fs.Int("exit", -1, "exit at once with this code")
	ignoreTerm := fs.Bool("ignore-term", false, "note SIGTERM but keep running")
	child := fs.Bool("child", false, "start a child process in the same group")
	sleep := fs.Bool("sleep", false, "just sleep (the child)")
	access := fs.Bool("access", false, "keep checking what the API lets this process do")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if *sleep {
		<-term
		return 0
	}
	write := func(name, content string) {
		if *out != "" {
			_ = os.WriteFile(filepath.Join(*out, name), []byte(content), 0o600)
		}
	}
	if *out != "" {
		env := os.Environ()
		sort.Strings(env)
		write("env.txt", strings.Join(env, "\n")+"\n")
		write("args.txt", strings.Join(args, "\n")+"\n")
		write("pid", strconv.Itoa(os.Getpid()))
		f, err := os.OpenFile(filepath.Join(*out, "history"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err == nil {
			_, _ = fmt.Fprintln(f, os.Getenv("POD_NAME"))
			_ = f.Close()
		}
	}
	fmt.Println("helper started", args)
	if *exitCode >= 0 {
		return *exitCode
	}
	for _, addr := range []string{*health, *metrics} {
		if addr == "" {
			continue
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil {
				fmt.Fprintln(os.Stderr, "listen:", err)
				os.Exit(3)
			}
		}()
	}
	if *child {
		cmd := exec.Command(os.Args[0], "--sleep")
		if err := cmd.Start(); err == nil {
			write("child.pid", strconv.Itoa(cmd.Process.Pid))
		}
	}
	if *access {
		go checkAccess(write)
	}
	for {
		<-term
		if *ignoreTerm {
			write("term", "ignored")
			continue
		}
		write("term", "exiting")
		return 0
	}
}

// checkAccess records who the API server takes this process for and whether it may list
// the pods of its namespace.
func checkAccess(write func(name, content string)) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	ns, _, err := cc.Namespace()
	if err != nil {
		write("access", "error: "+err.Error())
		return
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		write("access", "error: "+err.Error())
		return
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err == nil {
			write("whoami", r.Status.UserInfo.Username+" "+strings.Join(r.Status.UserInfo.Groups, ","))
		}
		_, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		cancel()
		switch {
		case err == nil:
			write("access", "allowed")
		case apierrors.IsForbidden(err):
			write("access", "forbidden")
		default:
			write("access", "error: "+err.Error())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
