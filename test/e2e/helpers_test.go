package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/gomega"

	"github.com/waoperator/whatsapp-operator/test/fakewa"
)

// kubectl runs the real kubectl against the suite's stack and returns its stdout; the error
// carries stderr, which is where kubectl explains itself.
func kubectl(args ...string) (string, error) {
	return kubectlIn("", args...)
}

// kubectlIn is kubectl with stdin (for `apply -f -`).
func kubectlIn(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, st.kubectl, args...)
	cmd.Dir = st.moduleRoot
	cmd.Env = append(os.Environ(), "KUBECONFIG="+st.kubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// mustKubectl is for commands a user types once (apply, annotate, delete): they must work.
func mustKubectl(args ...string) string {
	out, err := kubectl(args...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return out
}

// jsonpath reads one field of a resource, polled by the callers' Eventually.
func jsonpath(resource, path string) func() (string, error) {
	return func() (string, error) {
		return kubectl("get", resource, "-o", "jsonpath="+path)
	}
}

func controlGet(path string) ([]byte, error) {
	resp, err := http.Get(st.controlURL + path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, err
}

// controlPost is the fake phone acting: it returns the JSON reply or an error with the status.
func controlPost(path string, req any) (map[string]string, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	resp, err := http.Post(st.controlURL+path, "application/json", bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s: %s", path, resp.Status, body)
	}
	out := map[string]string{}
	return out, json.Unmarshal(body, &out)
}

// device is the fake WhatsApp's accounting for one device.
func device(jid string) (fakewa.DeviceStats, error) {
	var ds fakewa.DeviceStats
	body, err := controlGet("/devices/" + jid)
	if err != nil {
		return ds, err
	}
	return ds, json.Unmarshal(body, &ds)
}

// scanQR reads the QR payload as the README's curl line does and lets the fake phone scan it.
// A code can rotate between the read and the scan; the caller's Eventually reads again.
func scanQR(name, phone string) func() (string, error) {
	return func() (string, error) {
		qr, err := kubectl("get", "wac", name, "-o", "jsonpath={.status.connection.qrCode}")
		if err != nil {
			return "", err
		}
		if qr == "" {
			return "", fmt.Errorf("wac %s shows no QR code yet", name)
		}
		reply, err := controlPost("/scan", map[string]string{"phone": phone, "qr": qr})
		if err != nil {
			return "", err
		}
		return reply["jid"], nil
	}
}

// proc is one process, identified across PID reuse by its start time.
type proc struct {
	PID, PPID int
	Comm      string
	Start     string
	State     string
}

func readProc(pid int) (proc, bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return proc{}, false
	}
	// pid (comm) state ppid … starttime is field 22; comm may hold spaces and parentheses.
	s := string(data)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return proc{}, false
	}
	f := strings.Fields(s[closing+1:])
	if len(f) < 20 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return proc{PID: pid, PPID: ppid, Comm: s[open+1 : closing], State: f[0], Start: f[19]}, true
}

func allProcs() []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// alive: the same process (not a reused PID) still runs; a zombie has ended.
func (p proc) alive() bool {
	now, ok := readProc(p.PID)
	return ok && now.Start == p.Start && now.State != "Z"
}

// descendants lists every process below pid.
func descendants(pid int) []proc {
	all := allProcs()
	children := map[int][]proc{}
	for _, p := range all {
		children[p.PPID] = append(children[p.PPID], p)
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.PID)
		}
		queue = queue[1:]
	}
	return out
}

// processesWithEnv lists the live processes whose environment holds entry (NAME=value) exactly.
func processesWithEnv(entry string) []proc {
	var out []proc
	for _, p := range allProcs() {
		env, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.PID), "environ"))
		if err != nil || p.State == "Z" {
			continue
		}
		for _, e := range bytes.Split(env, []byte{0}) {
			if string(e) == entry {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// processesMentioning lists the live processes whose command line or environment names s: the
// stack's session processes carry the state directory in both.
func processesMentioning(s string) []string {
	var out []string
	for _, p := range allProcs() {
		if p.State == "Z" {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.PID), f))
			if err == nil && bytes.Contains(data, []byte(s)) {
				out = append(out, fmt.Sprintf("%d (%s)", p.PID, p.Comm))
				break
			}
		}
	}
	return out
}
