package localrunner

import (
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig gives the pod's processes the identity a cluster would: its ServiceAccount,
// by impersonation with the runner's own credentials. A pod that opts out of the token gets
// the anonymous user, which is what such a pod is to a real API server.
func (r *Runner) writeKubeconfig(pod *corev1.Pod) (string, error) {
	cfg := r.cfg
	// The host URL only: a kubeconfig's server is the root, whatever APIPath the config has.
	server, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return "", err
	}
	host := server.String()
	if r.opts.APIServerFor != nil {
		if h := r.opts.APIServerFor(pod); h != "" {
			host = h
		}
	}
	cluster := &clientcmdapi.Cluster{
		Server:                   host,
		CertificateAuthorityData: cfg.CAData,
		CertificateAuthority:     cfg.CAFile,
		InsecureSkipTLSVerify:    cfg.Insecure,
		TLSServerName:            cfg.ServerName,
	}
	user := &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientCertificate:     cfg.CertFile,
		ClientKeyData:         cfg.KeyData,
		ClientKey:             cfg.KeyFile,
		Token:                 cfg.BearerToken,
		TokenFile:             cfg.BearerTokenFile,
		Username:              cfg.Username,
		Password:              cfg.Password,
		Exec:                  cfg.ExecProvider,
		AuthProvider:          cfg.AuthProvider,
	}
	sa := serviceAccount(pod)
	if pod.Spec.AutomountServiceAccountToken != nil && !*pod.Spec.AutomountServiceAccountToken {
		user.Impersonate = "system:anonymous"
		user.ImpersonateGroups = []string{"system:unauthenticated"}
	} else {
		user.Impersonate = fmt.Sprintf("system:serviceaccount:%s:%s", pod.Namespace, sa)
		user.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + pod.Namespace, "system:authenticated"}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = cluster
	kc.AuthInfos["pod"] = user
	kc.Contexts["pod"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "pod", Namespace: pod.Namespace}
	kc.CurrentContext = "pod"
	raw, err := clientcmd.Write(*kc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(r.podDir(pod), "kubeconfig")
	// It holds the runner's credentials: readable by this user only.
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return "", err
	}
	return path, nil
}
