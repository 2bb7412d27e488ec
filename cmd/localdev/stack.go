package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/waoperator/whatsapp-operator/internal/waendpoint"
)

type options struct {
	// Dir holds the state of a run: kubeconfig, bin/, fakewa.json and run/ (pod volumes).
	Dir string
	// ModuleRoot is where `go build ./cmd/session` runs.
	ModuleRoot string
	// Assets is the directory with kube-apiserver and etcd.
	Assets string
	// FakeWhatsApp starts test/fakewa and builds the session with the fakewa tag.
	FakeWhatsApp    bool
	FakeControlAddr string
	// SessionBinary, when set, is a session build made beforehand (tests build before they
	// start a clock); empty, run builds ./cmd/session itself.
	SessionBinary string
	// Out receives the instructions for the user.
	Out io.Writer
	// ready, when set, is called once everything runs; tests wait on it.
	ready func(readyInfo)
}

// readyInfo tells a caller where the running stack is.
type readyInfo struct {
	Kubeconfig     string
	FakeControlURL string // empty without fake WhatsApp
}

// run starts the local stack and blocks until ctx ends or a part fails, then stops every part
// it started: runner processes, manager, fake WhatsApp, kube-apiserver and etcd.
func run(ctx context.Context, o options) (err error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	crdDir := filepath.Join(o.ModuleRoot, "config", "crd", "bases")
	workDir := filepath.Join(dir, "run")
	// etcd is ephemeral, so a new run has no resources: device stores left by the previous run
	// would belong to nothing, and reusing them silently could revive an old device.
	if err := os.RemoveAll(workDir); err != nil {
		return err
	}
	if err := os.MkdirAll(workDir, 0o750); err != nil {
		return err
	}

	sessionBin, err := filepath.Abs(o.SessionBinary)
	if err != nil {
		return err
	}
	if o.SessionBinary == "" {
		sessionBin = filepath.Join(dir, "bin", "session")
		if err := buildSession(ctx, o.ModuleRoot, sessionBin, o.FakeWhatsApp); err != nil {
			return err
		}
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory: o.Assets,
		CRDDirectoryPaths:     []string{crdDir},
		ErrorIfCRDPathMissing: true,
		// USE_EXISTING_CLUSTER in the caller's environment must not turn this into cluster mode.
		UseExistingCluster: ptr.To(false),
	}
	// Without kube-controller-manager nothing removes the kubernetes.io/pvc-protection
	// finalizer, so a deleted store claim would stay Terminating and block a new resource of
	// the same name (ResourceNotOwned). The controller deletes the session pod before the claim.
	env.ControlPlane.GetAPIServer().Configure().Append("disable-admission-plugins", "StorageObjectInUseProtection")
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("embedded control plane (kube-apiserver and etcd from %s): %w", o.Assets, err)
	}
	defer func() { err = errors.Join(err, env.Stop()) }()

	info := readyInfo{Kubeconfig: filepath.Join(dir, "kubeconfig")}
	if err := writeKubeconfig(env, info.Kubeconfig); err != nil {
		return err
	}

	var extraEnv []string
	if o.FakeWhatsApp {
		// Not :=, so that the deferred Close reports into run's own err.
		var fw *fakeWhatsApp
		fw, err = startFakeWhatsApp(filepath.Join(dir, "fakewa.json"), o.FakeControlAddr)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, fw.Close()) }()
		extraEnv = append(extraEnv, waendpoint.ConfigEnv+"="+fw.configPath)
		info.FakeControlURL = fw.controlURL
	}

	return serve(ctx, cfg, o, info, workDir, sessionBin, extraEnv)
}

// serve runs the manager and the pod runner until ctx ends or one of them fails, and returns
// only after both have stopped.
func serve(ctx context.Context, cfg *rest.Config, o options, info readyInfo, workDir, sessionBin string, extraEnv []string) error {
	mgr, err := newManager(ctx, cfg)
	if err != nil {
		return err
	}
	runner, err := newRunner(cfg, workDir, sessionBin, extraEnv)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- wrap("manager", mgr.Start(ctx)) }()
	go func() { done <- wrap("pod runner", runner.Start(ctx)) }()

	if mgr.GetCache().WaitForCacheSync(ctx) {
		printInstructions(o.Out, info)
		if o.ready != nil {
			o.ready(info)
		}
	}
	first := <-done
	cancel()
	return errors.Join(first, <-done)
}

func wrap(what string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// writeKubeconfig gives kubectl an administrator of the embedded API server.
func writeKubeconfig(env *envtest.Environment, path string) error {
	user, err := env.AddUser(envtest.User{Name: "localdev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// logger is the manager's logger, named so that runner and manager lines can be told apart.
var logger = ctrl.Log.WithName("localdev")
