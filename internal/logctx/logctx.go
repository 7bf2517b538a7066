// Package logctx carries a logger in a context: the agent puts its pass's
// logger there (pass id, and revision where the lines do not name one
// themselves), and the parts that log while they work, the drivers and the
// git source, take it from there without being handed it.
package logctx

import (
	"context"
	"log/slog"
)

type key struct{}

// With returns ctx carrying l.
func With(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, key{}, l)
}

// From returns the logger ctx carries, or slog's default one (the one-shot
// CLI commands log no pass id).
func From(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(key{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.Default()
}
