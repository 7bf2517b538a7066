package compose

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

func TestOneOffName(t *testing.T) {
	slug := "3f2a9c81d0e4b5a6978877665544332211"
	for _, tc := range []struct{ tmpl, want string }{
		{"usm_poller_1", "usm_poller_run_3f2a9c81d0e4"}, // docker-compose 1.x
		{"usm-poller-1", "usm-poller-run-3f2a9c81d0e4"}, // Compose v2
	} {
		if got := OneOffName(tc.tmpl, "usm", "poller", slug); got != tc.want {
			t.Errorf("OneOffName(%s) = %s, want %s", tc.tmpl, got, tc.want)
		}
	}
}

func TestNewSlug(t *testing.T) {
	for range 50 {
		s, err := newSlug()
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(s) || strings.Trim(s[:12], "0123456789") == "" {
			t.Fatalf("slug %q: want 64 hex digits, the first 12 not all decimal", s)
		}
	}
}

func TestOneOffSpec(t *testing.T) {
	tmpl := twoNetworks(template("usm_migrate_1"))
	// A published port, as inspect shows it (nat.PortMap, decoded so as not
	// to import go-connections here).
	if err := json.Unmarshal([]byte(`{"80/tcp": [{"HostPort": "8080"}]}`), &tmpl.HostConfig.PortBindings); err != nil {
		t.Fatal(err)
	}
	tmpl.HostConfig.PublishAllPorts = true
	s, err := oneOffSpec(tmpl, "usm", "migrate", "abcdef0123456789abcdef", override{Image: "local/migrate:2", RestartOn: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "usm_migrate_run_abcdef012345" {
		t.Errorf("name %q", s.Name)
	}
	lb := s.Config.Labels
	if lb[LabelOneoff] != "True" || lb[LabelSlug] != "abcdef0123456789abcdef" || lb[LabelProject] != "usm" ||
		lb[LabelService] != "migrate" || lb["com.docker.compose.version"] != "2.29.1" {
		t.Errorf("labels %v", lb)
	}
	for _, gone := range []string{LabelNumber, labelConfigHash, LabelRestartOn, labelReplace} {
		if _, ok := lb[gone]; ok {
			t.Errorf("label %s on a one-off: %v", gone, lb)
		}
	}
	if tmpl.Config.Labels[LabelOneoff] != "False" || tmpl.Config.Labels[LabelNumber] != "1" {
		t.Errorf("the template's labels were changed: %v", tmpl.Config.Labels)
	}
	if s.Config.Image != "local/migrate:2" {
		t.Errorf("image %q, want the declared one", s.Config.Image)
	}
	hc := s.HostConfig
	if hc.RestartPolicy.Name != container.RestartPolicyDisabled || hc.PortBindings != nil || hc.PublishAllPorts || hc.AutoRemove {
		t.Errorf("host config %+v: want no restart policy, no published ports, not auto-removed", hc)
	}
	if tmpl.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped || tmpl.HostConfig.PortBindings == nil {
		t.Errorf("the template's host config was changed: %+v", tmpl.HostConfig)
	}
	if got := s.Networking.EndpointsConfig["usm_default"]; got == nil || got.Aliases != nil {
		t.Errorf("primary endpoint %+v, want no aliases", got)
	}
	wantConnect := []endpoint{{Network: "net-backend", Settings: &network.EndpointSettings{}}}
	if !reflect.DeepEqual(s.Connect, wantConnect) {
		t.Errorf("connect %+v, want %+v", s.Connect, wantConnect)
	}
}

// migrate is the one-off task's kept container #1, exited after an up.
func migrate() container.Summary {
	c := ctr("usm", "migrate", 1, exited)
	c.ID, c.Names = "id-usm_migrate_1", []string{"/usm_migrate_1"}
	return c
}

func runMigrate(ctx context.Context, t *testing.T, rec *recorder) (controllers.RunResult, []string, error) {
	t.Helper()
	rec.tmpl = template("usm_migrate_1")
	rec.list = []container.Summary{migrate()}
	d := &Driver{API: rec, CallTimeout: time.Second}
	res, err := d.Run(ctx, targets(declare("usm", "migrate", 0))[0])
	// The one-off's name ends in a random slug: show it as <slug>.
	var calls []string
	for _, c := range rec.calls {
		calls = append(calls, regexp.MustCompile(`_run_[0-9a-f]{12}`).ReplaceAllString(c, "_run_<slug>"))
	}
	return res, calls, err
}

func TestRunAOneOff(t *testing.T) {
	made := []string{
		"list",
		"inspect id-usm_migrate_1",
		"create usm_migrate_run_<slug>",
		"start id-usm_migrate_run_<slug>",
	}
	waited := append(slices.Clone(made), "wait id-usm_migrate_run_<slug> not-running")
	removed := "remove id-usm_migrate_run_<slug> force volumes"
	for _, tc := range []struct {
		name    string
		rec     *recorder
		want    controllers.RunResult
		wantErr error  // errors.Is
		errText string // in the error
		calls   []string
	}{
		{name: "exit 0", rec: &recorder{}, want: controllers.RunResult{Exited: true, Succeeded: true, Detail: "exited 0"},
			calls: append(slices.Clone(waited), removed)},
		{name: "exit 3", rec: &recorder{exit: 3}, want: controllers.RunResult{Exited: true, Detail: "exited 3"},
			calls: append(slices.Clone(waited), removed)},
		{name: "the wait is cut short: stopped and removed", rec: &recorder{waitErr: context.Canceled}, wantErr: context.Canceled,
			calls: append(slices.Clone(waited), "stop id-usm_migrate_run_<slug> 10s", removed)},
		{name: "a start that fails removes the one-off", rec: &recorder{startErr: errors.New("no space left on device")},
			errText: "start usm_migrate_run_", calls: append(slices.Clone(made), removed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, calls, err := runMigrate(context.Background(), t, tc.rec)
			switch {
			case tc.wantErr == nil && tc.errText == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			case tc.errText != "" && (err == nil || !strings.Contains(err.Error(), tc.errText)):
				t.Errorf("err = %v, want one saying %q", err, tc.errText)
			}
			if res != tc.want {
				t.Errorf("result %+v, want %+v", res, tc.want)
			}
			if !reflect.DeepEqual(calls, tc.calls) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(tc.calls, "\n"))
			}
			if len(tc.rec.created) != 1 || tc.rec.created[0].Config.Labels[LabelOneoff] != "True" {
				t.Errorf("created %+v", tc.rec.created)
			}
		})
	}
}

func TestRunAOneOffCannot(t *testing.T) {
	t.Run("no container to make it from", func(t *testing.T) {
		rec := &recorder{}
		d := &Driver{API: rec, CallTimeout: time.Second}
		_, err := d.Run(context.Background(), targets(declare("usm", "migrate", 0))[0])
		if err == nil || !strings.Contains(err.Error(), "no container of compose service usm/migrate to make a one-off from") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("a selector is not run", func(t *testing.T) {
		d := &Driver{API: &recorder{}}
		sel := v1.Service{Name: "all", Driver: v1.DriverCompose, Replicas: v1.Ptr(int32(0)), Select: &v1.ServiceSelector{Project: "usm"}}
		_, err := d.Run(context.Background(), controllers.Target{Kind: controllers.KindSelector, Name: "all", Driver: v1.DriverCompose, Service: &sel})
		if !errors.Is(err, controllers.ErrCannotRun) {
			t.Errorf("err = %v, want ErrCannotRun", err)
		}
	})
}
