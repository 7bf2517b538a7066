package controllers

import (
	"context"
	"log/slog"

	"reconciler.dev/reconciler/internal/logctx"
)

// WithLogger returns ctx carrying the logger of the pass it belongs to (with
// the pass id and revision), for drivers that log while they work.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context { return logctx.With(ctx, l) }

// Logger returns the pass's logger from ctx, or slog's default one outside
// a pass (the one-shot CLI commands log no pass id).
func Logger(ctx context.Context) *slog.Logger { return logctx.From(ctx) }
