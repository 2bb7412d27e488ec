// Package localrunner runs the Pods of a bare kube-apiserver (no scheduler, no kubelet) as
// local processes, so that the operator works on one machine without a cluster.
//
// It plays three parts of a cluster at once, each only as far as the operator needs:
//   - the node: it registers one Node and keeps its Ready condition fresh;
//   - the scheduler: it binds unscheduled pods that match a selector to that Node;
//   - the kubelet: it runs each container of the pods on that Node as a process and reports
//     their status, and it carries out graceful deletion.
//
// A container becomes a process as follows. command[0] is looked up in Options.Commands (the
// image name when the container has no command); the image itself is never pulled. The pod's
// environment is resolved as a kubelet would (literal values, the downward API, Secret and
// ConfigMap keys, envFrom) and Options.ExtraEnv is appended.
//
// Differences from a cluster, and why:
//   - Network: every pod shares the host's loopback. Each declared containerPort is given a
//     free loopback port (none held by another live pod of the runner), and every argument of
//     the form --flag=:PORT or --flag=HOST:PORT naming a declared port is rewritten to
//     --flag=127.0.0.1:<allocated>; probes use the same mapping. Otherwise two session pods
//     would fight over :8080 and :8081. The two-argument form (--flag :PORT) is not rewritten.
//   - Filesystem: a process cannot write /var/lib/whatsapp. A PersistentVolumeClaim is the
//     folder WorkDir/volumes/<namespace>/<claim> (it outlives the pod, which is what keeps a
//     device paired), an emptyDir (and any other volume type) the folder
//     WorkDir/pods/<uid>/<volume>. Every environment value and argument (also the value of
//     --flag=VALUE) that starts with a volumeMount's mountPath is rewritten to the mapped
//     folder, so WA_SQLITE_PATH=/var/lib/whatsapp/device.db lands on the claim's folder. HOME
//     and TMPDIR point to WorkDir/pods/<uid>/_tmp.
//   - Identity: the process reaches the API server as the pod's ServiceAccount. The runner
//     writes WorkDir/pods/<uid>/kubeconfig with its own credentials plus impersonation of
//     system:serviceaccount:<ns>:<sa> and sets KUBECONFIG, so RBAC applies as in a cluster.
//     The runner's credentials must therefore be allowed to impersonate (envtest's are). A pod
//     with automountServiceAccountToken: false is system:anonymous. The process inherits no
//     environment from the runner but PATH (ExtraEnv comes last and can override anything,
//     KUBECONFIG included).
//   - Restarts: none. restartPolicy is treated as Never whatever it says: the operator
//     replaces session pods itself. Liveness probes are not run.
//   - Scheduling: nodeSelector, affinity, tolerations and resources are not evaluated.
//   - Not emulated: init containers (the pod fails with a message), exec readiness probes
//     (the container counts as ready), resourceFieldRef env, the securityContext, and the
//     contents of configMap and projected volumes (they are empty folders). Secret volumes hold
//     their keys (all, or the listed items; optional ones may be missing) and are written again
//     every 2 s while the pod runs, as a kubelet refreshes them on its pod syncs.
//   - A Secret or ConfigMap the env needs but that does not exist yet keeps the pod Pending
//     (CreateContainerConfigError) and is retried, as a kubelet does.
//   - The pod folders stay after the pod is gone, for their logs; WorkDir is the caller's.
//   - A pod that this Node ran before the runner restarted is reported Failed: its processes
//     died with the previous runner.
//
// Each container's stdout and stderr go to WorkDir/pods/<uid>/<container>.log and, line by
// line, to the logger at V(1).
package localrunner
