// Command session is the process in a WhatsAppConnection's session pod: it holds the
// connection's Lease and runs its WhatsApp client (internal/session). It exits 0 after SIGTERM
// and non-zero when it lost its Lease, so that the controller replaces it.
package main

import (
	"flag"
	"os"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager/signals"

	"github.com/waoperator/whatsapp-operator/internal/session"
	"github.com/waoperator/whatsapp-operator/internal/session/outbox"
	"github.com/waoperator/whatsapp-operator/internal/session/whatsapp"
	"github.com/waoperator/whatsapp-operator/internal/sessionenv"
)

func main() {
	restoreGC := holdGC()
	var cfg session.Config
	flag.StringVar(&cfg.HealthAddr, sessionenv.FlagHealthProbeBindAddress, ":8081", "Address of /healthz and /readyz.")
	flag.StringVar(&cfg.MetricsAddr, sessionenv.FlagMetricsBindAddress, ":8080", "Address of /metrics; 0 disables it.")
	flag.DurationVar(&cfg.LeaseDuration, sessionenv.FlagLeaseDuration, session.DefaultLeaseDuration,
		"How long the Lease lasts without renewal.")
	flag.DurationVar(&cfg.RenewDeadline, sessionenv.FlagRenewDeadline, session.DefaultRenewDeadline,
		"How long after the last good renewal the session drops WhatsApp; must exceed 1.2 × retry-period.")
	flag.DurationVar(&cfg.RetryPeriod, sessionenv.FlagRetryPeriod, session.DefaultRetryPeriod,
		"How often the Lease is renewed (one API write each).")
	var send sendAPIFlags
	send.bind(flag.CommandLine)
	var trim trimFlags
	trim.bind(flag.CommandLine)
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	log := zap.New(zap.UseFlagOptions(&opts))
	logf.SetLogger(log)
	klog.SetLogger(log.WithName("client-go"))

	cfg.FromEnv()
	rest, err := config.GetConfig()
	if err != nil {
		log.Error(err, "no API server configuration")
		os.Exit(1)
	}
	cfg.REST = rest
	store := session.StoreFromEnv()
	cfg.StoreSecretFile, cfg.StoreSecretValue = store.PostgresDSNFile, store.PostgresDSN
	slot := &outbox.Slot{}
	opener, err := withEvents(whatsapp.Opener{Store: store,
		Owner: whatsapp.StoreOwner{Namespace: cfg.Namespace, Name: cfg.ConnectionName},
		Send:  send.options(slot)}, &cfg)
	if err != nil {
		log.Error(err, "invalid event sinks")
		os.Exit(2)
	}
	cfg.OpenClient = opener.Open
	withOutboxMetrics(&cfg, slot)

	rt, err := session.New(cfg, log.WithValues("connection", cfg.Namespace+"/"+cfg.ConnectionName, "pod", cfg.PodName))
	if err != nil {
		log.Error(err, "invalid configuration")
		os.Exit(2)
	}
	ctx := signals.SetupSignalHandler()
	go releaseGCAfterStart(ctx, rt.State, restoreGC, 50*time.Millisecond, startGCAfterQR, startGCHoldMax)
	if err := serveSendAPI(ctx, send, cfg, rt, slot, rest, log.WithName("send-api")); err != nil {
		log.Error(err, "cannot start the send API")
		os.Exit(1)
	}
	go settle(ctx, rt.Ready, trim, log)
	if err := rt.Run(ctx); err != nil {
		log.Error(err, "session ended")
		os.Exit(1)
	}
}
