package localrunner

import (
	"context"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

const (
	loopback = "127.0.0.1"
	// nodeHeartbeat is how often the Node's Ready condition is renewed; a kubelet's default
	// status report frequency is of the same order.
	nodeHeartbeat = 20 * time.Second
)

// ensureNode creates the Node when missing and marks it Ready.
func (r *Runner) ensureNode(ctx context.Context) error {
	nodes := r.cs.CoreV1().Nodes()
	_, err := nodes.Get(ctx, r.opts.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: r.opts.NodeName,
			Labels: map[string]string{
				corev1.LabelHostname:   r.opts.NodeName,
				corev1.LabelOSStable:   runtime.GOOS,
				corev1.LabelArchStable: runtime.GOARCH,
			},
		}}
		_, err = nodes.Create(ctx, node, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	return r.reportNodeStatus(ctx)
}

func (r *Runner) reportNodeStatus(ctx context.Context) error {
	nodes := r.cs.CoreV1().Nodes()
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		node, err := nodes.Get(ctx, r.opts.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		ready := corev1.NodeCondition{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "the local runner is running pods", LastHeartbeatTime: now, LastTransitionTime: now,
		}
		conds := node.Status.Conditions[:0]
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					ready.LastTransitionTime = c.LastTransitionTime
				}
				continue
			}
			conds = append(conds, c)
		}
		node.Status.Conditions = append(conds, ready)
		capacity := corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
			corev1.ResourceMemory: resource.MustParse("64Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
		}
		node.Status.Capacity = capacity
		node.Status.Allocatable = capacity
		node.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: loopback},
			{Type: corev1.NodeHostName, Address: r.opts.NodeName},
		}
		node.Status.NodeInfo.OperatingSystem = runtime.GOOS
		node.Status.NodeInfo.Architecture = runtime.GOARCH
		node.Status.NodeInfo.KubeletVersion = "localrunner"
		node.Status.NodeInfo.ContainerRuntimeVersion = "localrunner://process"
		_, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

// heartbeat keeps the Node Ready until ctx ends.
func (r *Runner) heartbeat(ctx context.Context) {
	t := time.NewTicker(nodeHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if r.lost.Load() {
				continue
			}
			if err := r.reportNodeStatus(ctx); err != nil && ctx.Err() == nil {
				r.log.Error(err, "cannot renew the Node's status", "node", r.opts.NodeName)
			}
		}
	}
}
