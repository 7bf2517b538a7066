package systemd

import (
	"errors"
	"testing"

	"reconciler.dev/reconciler/controllers"
)

func TestRunResult(t *testing.T) {
	jobFailed := errors.New(`systemd/t: start t.service: job finished with result "failed"`)
	tests := []struct {
		name  string
		props map[string]any
		job   error
		want  controllers.RunResult
		err   bool
	}{
		{"one-shot exited 0", map[string]any{"Type": "oneshot", "Result": "success", "ExecMainStatus": int32(0)}, nil,
			controllers.RunResult{Exited: true, Succeeded: true, Detail: "exited 0 (success)"}, false},
		{"one-shot exited 3", map[string]any{"Type": "oneshot", "Result": "exit-code", "ExecMainStatus": int32(3)}, jobFailed,
			controllers.RunResult{Exited: true, Detail: "exited 3 (exit-code)"}, false},
		{"one-shot killed by its timeout", map[string]any{"Type": "oneshot", "Result": "timeout", "ExecMainStatus": int32(0)}, jobFailed,
			controllers.RunResult{Exited: true, Detail: "exited 0 (timeout)"}, false},
		{"a long-running unit started", map[string]any{"Type": "simple", "Result": "success"}, nil,
			controllers.RunResult{Succeeded: true, Detail: "started"}, false},
		{"a long-running unit that did not start", map[string]any{"Type": "simple"}, jobFailed, controllers.RunResult{}, true},
	}
	for _, tc := range tests {
		got, err := runResult(tc.props, tc.job)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: %+v, %v; want %+v, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}
