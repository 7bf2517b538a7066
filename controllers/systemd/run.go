package systemd

import (
	"context"
	"fmt"

	"reconciler.dev/reconciler/controllers"
)

// Run starts a plain unit once, for a trigger (onStart, onExit) or the
// start of a one-shot with onExit. systemd finishes the start job of a
// Type=oneshot unit only when its ExecStart has exited ("done" on exit
// status 0, "failed" otherwise), so the job's result is the exit; the
// unit's Result and ExecMainStatus say it in words. Any other type has
// started when its job is done.
func (d *Driver) Run(ctx context.Context, t controllers.Target) (controllers.RunResult, error) {
	unit := unitName(t)
	api, err := d.api(ctx)
	if err != nil {
		return controllers.RunResult{}, fmt.Errorf("%s: %w", t.Subject(), err)
	}
	jobErr := d.job(ctx, api, t.Subject(), "start", unit)
	cctx, cancel := context.WithTimeout(ctx, d.callTimeout())
	defer cancel()
	d.Count.Add("properties")
	props, err := api.GetUnitTypePropertiesContext(cctx, unit, "Service")
	if err != nil {
		if jobErr != nil {
			return controllers.RunResult{}, jobErr
		}
		return controllers.RunResult{}, fmt.Errorf("%s: reading %s after its start: %w", t.Subject(), unit, err)
	}
	return runResult(props, jobErr)
}

// runResult reads what a start did from the unit's Service properties and
// the start job's error. It is pure.
func runResult(props map[string]any, jobErr error) (controllers.RunResult, error) {
	typ, _ := props["Type"].(string)
	if typ != "oneshot" {
		if jobErr != nil {
			return controllers.RunResult{}, jobErr
		}
		return controllers.RunResult{Succeeded: true, Detail: "started"}, nil
	}
	result, _ := props["Result"].(string)
	status, _ := props["ExecMainStatus"].(int32)
	ok := jobErr == nil && result == "success" && status == 0
	return controllers.RunResult{Exited: true, Succeeded: ok, Detail: fmt.Sprintf("exited %d (%s)", status, result)}, nil
}
