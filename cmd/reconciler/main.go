package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitError carries a process exit code through cobra. The CLI contract gives
// codes meaning (plan: 2 = drift), so a plain error is always exit 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode returns err as a silent exit with the given code: the command has
// already printed what the user needs.
func exitCode(code int) error { return &exitError{code: code} }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signalContext()
	defer stop()

	root := newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(termSafe(os.Stderr), "reconciler:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(termSafe(os.Stderr), "reconciler:", err)
	return 1
}

// signalContext is cancelled on the first SIGTERM or SIGINT, so the running
// command can finish or cleanly abandon its current action; a second signal
// exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
			return
		}
		<-sigs
		fmt.Fprintln(os.Stderr, "reconciler: second signal, exiting at once")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(sigs); cancel() }
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "reconciler",
		Short: "GitOps agent for Docker Swarm services, systemd units and worker processes",
		Long: `reconciler converges a host to the desired state committed to git: Swarm
service replicas, systemd unit state, poller counts, maintenance mode. It
observes what really runs, acts in a safe order, and reports drift.

Every flag can also be set through the environment as RECONCILER_<FLAG>, with
dashes as underscores (for example RECONCILER_STATE_DIR); a flag given on the
command line wins.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return flagsFromEnv(cmd)
		},
	}
	root.AddCommand(newVersionCommand(), newValidateCommand(), newPlanCommand(), newApplyCommand(), newSchemaCommand(), newRunCommand(), newStatusCommand(), newFleetCommand(), newExportCommand(), newDiffCommand(), newQuarantineCommand())
	return root
}

// newGroupCommand is a command that only holds subcommands (fleet,
// quarantine): run alone, it prints its help, as cobra does for a command
// with no Run.
func newGroupCommand(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long}
	cmd.AddCommand(subs...)
	return cmd
}

// flagsFromEnv sets every flag the user did not give from RECONCILER_<FLAG>.
func flagsFromEnv(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		key := "RECONCILER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(key)
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
	})
	return errors.Join(errs...)
}
