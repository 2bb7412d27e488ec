package plugin

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	whatsappv1alpha1 "github.com/waoperator/whatsapp-operator/api/v1alpha1"
)

// NewCommand builds kubectl-whatsapp with kubectl's own connection flags (--kubeconfig,
// --context, --namespace, ...), so it behaves like the kubectl that runs it.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := genericclioptions.NewConfigFlags(true)
	var pollInterval time.Duration
	root := &cobra.Command{
		Use:   "kubectl-whatsapp",
		Short: "Pair and steer WhatsAppConnections",
		Long: "Pair WhatsApp linked devices run by whatsapp-operator and see how they are doing.\n\n" +
			"The QR and pairing codes shown let whoever sees them link a device to the account.",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl whatsapp"},
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().DurationVar(&pollInterval, "poll-interval", DefaultPollInterval, "how often waiting commands read the resource")
	_ = root.PersistentFlags().MarkHidden("poll-interval")

	env := &cmdEnv{flags: flags, streams: streams, poll: &pollInterval}
	root.AddCommand(qrCommand(env), statusCommand(env), pairCommand(env),
		requestCommand(env, "reconnect", "Clear a Conflict or Degraded halt and try to connect once more", Reconnect),
		requestCommand(env, "logout", "Log the device out, wipe its store and pair again", Logout),
		eventsCommand(env), sendCommand(env), messagesCommand(env))
	return root
}

type cmdEnv struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
	poll    *time.Duration
}

func (e *cmdEnv) client() (client.Client, string, error) {
	cfg, err := e.flags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := e.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	scheme := runtime.NewScheme()
	if err := whatsappv1alpha1.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return c, ns, err
}

func (e *cmdEnv) target(name string) (Target, error) {
	c, ns, err := e.client()
	return Target{Client: c, Namespace: ns, Name: name}, err
}

// isTerminal decides whether redrawing in place is safe; piped output keeps every frame.
func (e *cmdEnv) isTerminal() bool {
	f, ok := e.streams.Out.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func qrCommand(e *cmdEnv) *cobra.Command {
	o := WaitOptions{}
	cmd := &cobra.Command{
		Use:   "qr NAME",
		Short: "Show the QR code to scan with the phone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := e.target(args[0])
			if err != nil {
				return err
			}
			o.PollInterval, o.ClearScreen = *e.poll, e.isTerminal()
			return QR(cmd.Context(), t, e.streams.Out, o)
		},
	}
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "redraw the code when it rotates and wait until the device is connected")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "give up waiting after this long (0: wait until interrupted)")
	return cmd
}

func pairCommand(e *cmdEnv) *cobra.Command {
	o := WaitOptions{}
	var phone string
	cmd := &cobra.Command{
		Use:   "pair NAME --phone +E164",
		Short: "Pair by phone code: switch to PhoneCode pairing and print the code to enter on the phone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := e.target(args[0])
			if err != nil {
				return err
			}
			o.PollInterval = *e.poll
			return Pair(cmd.Context(), t, phone, e.streams.Out, o)
		},
	}
	cmd.Flags().StringVar(&phone, "phone", "", "the account's phone number in E.164 form, e.g. +14155550123")
	_ = cmd.MarkFlagRequired("phone")
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "print each new code and wait until the device is connected")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up waiting after this long (0: wait until interrupted)")
	return cmd
}

func statusCommand(e *cmdEnv) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "List WhatsAppConnections, or show one in detail with its conditions",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				return StatusOne(cmd.Context(), Target{Client: c, Namespace: ns, Name: args[0]}, e.streams.Out)
			}
			if all {
				ns = ""
			}
			return StatusList(cmd.Context(), c, ns, e.streams.Out)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list WhatsAppConnections in every namespace")
	return cmd
}

func requestCommand(e *cmdEnv, use, short string,
	do func(context.Context, Target, io.Writer, time.Time) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := e.target(args[0])
			if err != nil {
				return err
			}
			return do(cmd.Context(), t, e.streams.Out, time.Now())
		},
	}
}
