package systemd

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"

	sd "github.com/coreos/go-systemd/v22/dbus"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/controllers/drivertest"
	"reconciler.dev/reconciler/controllers/engine/enginetest"
)

// targets builds the pass's targets the way the engine does
// (enginetest.Targets).
func targets(spec v1.HostSpec) []controllers.Target { return enginetest.Targets(spec) }

func units(us ...v1.Unit) v1.HostSpec { return v1.HostSpec{Units: us} }

func services(ss ...v1.Service) v1.HostSpec { return v1.HostSpec{Services: ss} }

// unit declares a unit; nil leaves a field unmanaged.
func unit(name string, enabled, active *bool) v1.Unit {
	return v1.Unit{Name: name, Enabled: enabled, Active: active}
}

// poller is the usm-poller template service with n replicas.
func poller(n int32) v1.Service {
	return v1.Service{Name: "usm-poller", Driver: v1.DriverSystemd, Unit: "usm-poller@.service", Replicas: v1.Ptr(n)}
}

// plain is a service on a plain unit (<name>.service by default): 0 or 1.
func plain(name string, n int32) v1.Service {
	return v1.Service{Name: name, Driver: v1.DriverSystemd, Replicas: v1.Ptr(n)}
}

var yes, no = v1.Ptr(true), v1.Ptr(false)

// The two list calls' results, as go-systemd returns them.

func file(path, state string) sd.UnitFile { return sd.UnitFile{Path: path, Type: state} }

func loaded(name, active, sub string) sd.UnitStatus {
	return sd.UnitStatus{Name: name, LoadState: "loaded", ActiveState: active, SubState: sub}
}

var (
	pollerFile  = file("/lib/systemd/system/usm-poller@.service", "disabled")
	pollerFiles = []sd.UnitFile{pollerFile}
)

// only is the list of units when just name is loaded.
func only(name, active, sub string) []sd.UnitStatus {
	return []sd.UnitStatus{loaded(name, active, sub)}
}

// timer is the unit most unit cases declare; onTimer and offTimer are its
// unit file enabled and disabled.
const timer = "abb-factory-proxy-housekeeping.timer"

var (
	onTimer  = []sd.UnitFile{file("/etc/systemd/system/"+timer, "enabled")}
	offTimer = []sd.UnitFile{file("/etc/systemd/system/"+timer, "disabled")}
)

// pollers lists usm-poller@1, @2, ... in the given active states; "-" is an
// instance systemd has not loaded.
func pollers(states ...string) []sd.UnitStatus {
	sub := map[string]string{"active": "running", "activating": "start", "deactivating": "stop-sigterm",
		"failed": "failed", "inactive": "dead"}
	var out []sd.UnitStatus
	for i, st := range states {
		if st != "-" {
			out = append(out, loaded(fmt.Sprintf("usm-poller@%d.service", i+1), st, sub[st]))
		}
	}
	return out
}

// serviceAction is the expected replicas action on systemd service name.
var serviceAction = drivertest.ReplicasOf(v1.DriverSystemd)

// host is what a plan or health case sees: the declared spec and what the
// two list calls return.
type host struct {
	spec  v1.HostSpec
	files []sd.UnitFile
	units []sd.UnitStatus
}

// live is the pass's targets of h and what liveFrom makes of them.
func (h host) live() ([]controllers.Target, map[string]controllers.Live) {
	ts := targets(h.spec)
	return ts, liveFrom(ts, h.files, h.units)
}

// template is a host with usm-poller declared n, its unit file and its
// instances in the given states (see pollers).
func template(n int32, states ...string) host {
	return host{services(poller(n)), pollerFiles, pollers(states...)}
}

// brokerFile is the unit file of the plain unit factory-broker.service.
func brokerFile(state string) []sd.UnitFile {
	return []sd.UnitFile{file("/etc/systemd/system/factory-broker.service", state)}
}

func TestLiveFrom(t *testing.T) {
	cases := []struct {
		name  string
		spec  v1.HostSpec
		files []sd.UnitFile
		units []sd.UnitStatus
		want  controllers.Live
	}{
		{
			name:  "unit enabled and active",
			spec:  units(unit(timer, yes, yes)),
			files: onTimer,
			units: []sd.UnitStatus{loaded(timer, "active", "waiting")},
			want: controllers.Live{Exists: true, Replicas: 1, Running: 1, Enabled: yes, Active: yes,
				State: "active (waiting), enabled", Raw: unitLive{FileState: "enabled", ActiveState: "active", SubState: "waiting"}},
		},
		{
			name:  "unit disabled and inactive, loaded",
			spec:  units(unit("x.service", yes, yes)),
			files: []sd.UnitFile{file("/lib/systemd/system/x.service", "disabled")},
			units: []sd.UnitStatus{loaded("x.service", "inactive", "dead")},
			want: controllers.Live{Exists: true, Enabled: no, Active: no,
				State: "inactive (dead), disabled", Raw: unitLive{FileState: "disabled", ActiveState: "inactive", SubState: "dead"}},
		},
		{
			name:  "unit disabled and not loaded at all",
			spec:  units(unit("x.service", yes, yes)),
			files: []sd.UnitFile{file("/lib/systemd/system/x.service", "disabled")},
			want: controllers.Live{Exists: true, Enabled: no, Active: no,
				State: "inactive, disabled", Raw: unitLive{FileState: "disabled", ActiveState: "inactive"}},
		},
		{
			name:  "unit activating counts as active, not running",
			spec:  units(unit("x.service", nil, yes)),
			files: []sd.UnitFile{file("/etc/systemd/system/x.service", "enabled-runtime")},
			units: []sd.UnitStatus{loaded("x.service", "activating", "start-pre")},
			want: controllers.Live{Exists: true, Replicas: 1, Enabled: yes, Active: yes,
				State: "activating (start-pre), enabled-runtime", Raw: unitLive{FileState: "enabled-runtime", ActiveState: "activating", SubState: "start-pre"}},
		},
		{
			name:  "masked unit",
			spec:  units(unit("x.service", yes, nil)),
			files: []sd.UnitFile{file("/etc/systemd/system/x.service", "masked")},
			units: []sd.UnitStatus{{Name: "x.service", LoadState: "masked", ActiveState: "inactive", SubState: "dead"}},
			want: controllers.Live{Exists: true, Enabled: no, Active: no,
				State: "inactive (dead), masked", Raw: unitLive{FileState: "masked", ActiveState: "inactive", SubState: "dead"}},
		},
		{
			name:  "unit loaded as not-found, no file: missing",
			spec:  units(unit(timer, yes, yes)),
			units: []sd.UnitStatus{{Name: timer, LoadState: "not-found", ActiveState: "inactive", SubState: "dead"}},
			want:  controllers.Live{Enabled: no, Active: no, State: "inactive", Raw: unitLive{ActiveState: "inactive"}},
		},
		{
			name:  "another unit's file does not count",
			spec:  units(unit("x.service", yes, yes)),
			files: []sd.UnitFile{file("/etc/systemd/system/x.service.d", "enabled"), file("/etc/systemd/system/xx.service", "enabled")},
			want:  controllers.Live{Enabled: no, Active: no, State: "inactive", Raw: unitLive{ActiveState: "inactive"}},
		},
		{
			name:  "plain-unit service, running",
			spec:  services(plain("factory-broker", 1)),
			files: brokerFile("enabled"),
			units: []sd.UnitStatus{loaded("factory-broker.service", "active", "running")},
			want: controllers.Live{Exists: true, Replicas: 1, Running: 1, Enabled: yes, Active: yes,
				State: "active (running), enabled", Raw: unitLive{FileState: "enabled", ActiveState: "active", SubState: "running"}},
		},
		{
			name:  "template: numbered instances only, in canonical form",
			spec:  services(poller(3)),
			files: []sd.UnitFile{pollerFile},
			units: append(pollers("active", "activating", "failed"),
				loaded("usm-poller@foo.service", "active", "running"),
				loaded("usm-poller@07.service", "active", "running"),
				loaded("usm-poller@0.service", "active", "running"),
				loaded("usm-poller@-1.service", "active", "running"),
				loaded("usm-poller@4.socket", "active", "listening"),
				loaded("other-usm-poller@5.service", "active", "running"),
				sd.UnitStatus{Name: "usm-poller@6.service", LoadState: "not-found", ActiveState: "inactive", SubState: "dead"},
			),
			want: controllers.Live{Exists: true, Replicas: 2, Running: 1, State: "1/2 active",
				Failing: "usm-poller@3.service failed", Details: map[string]string{"failing": "usm-poller@3.service failed"},
				Raw: templateLive{Template: "usm-poller@.service", Instances: map[int]string{1: "active", 2: "activating", 3: "failed"},
					Sub: map[int]string{1: "running", 2: "start", 3: "failed"}}},
		},
		{
			name:  "template without its unit file: missing",
			spec:  services(poller(1)),
			units: pollers("active"),
			want: controllers.Live{Replicas: 1, Running: 1, State: "1/1 active",
				Raw: templateLive{Template: "usm-poller@.service", Instances: map[int]string{1: "active"}, Sub: map[int]string{1: "running"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(tc.spec)
			got := liveFrom(ts, tc.files, tc.units)
			if len(got) != 1 || !reflect.DeepEqual(got[ts[0].Subject()], tc.want) {
				t.Errorf("liveFrom:\n got  %s\n want %s", fmtLive(got[ts[0].Subject()]), fmtLive(tc.want))
				if len(got) != 1 {
					t.Errorf("got %d entries, want 1: %v", len(got), got)
				}
			}
		})
	}
}

// fmtLive shows a Live with its pointers followed.
func fmtLive(l controllers.Live) string {
	b := func(p *bool) string {
		if p == nil {
			return "nil"
		}
		return strconv.FormatBool(*p)
	}
	return fmt.Sprintf("exists=%v replicas=%d running=%d enabled=%s active=%s state=%q raw=%+v",
		l.Exists, l.Replicas, l.Running, b(l.Enabled), b(l.Active), l.State, l.Raw)
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name string
		host
		want []controllers.Action
	}{
		{"in sync",
			host{
				v1.HostSpec{Units: []v1.Unit{unit(timer, yes, yes)}, Services: []v1.Service{poller(2), plain("broker", 0)}},
				append(onTimer, pollerFile, file("/etc/systemd/system/broker.service", "disabled")),
				append(pollers("active", "active", "failed"), loaded(timer, "active", "waiting")),
			}, nil},
		{"unit to stop and disable: stop first", host{units(unit(timer, no, no)), onTimer, only(timer, "active", "waiting")},
			[]controllers.Action{
				drivertest.Unit(timer, "active", "true", "false", controllers.OpStop),
				drivertest.Unit(timer, "enabled", "true", "false", controllers.OpDisable),
			}},
		{"maintenance stops and disables a unit declared on",
			host{v1.HostSpec{Maintenance: &v1.Maintenance{Enabled: yes}, Units: []v1.Unit{unit(timer, yes, yes)}}, onTimer, only(timer, "active", "waiting")},
			[]controllers.Action{
				drivertest.Unit(timer, "active", "true", "false", controllers.OpStop),
				drivertest.Unit(timer, "enabled", "true", "false", controllers.OpDisable),
			}},
		{"unit to enable and start: enable first", host{units(unit(timer, yes, yes)), offTimer, only(timer, "inactive", "dead")},
			[]controllers.Action{
				drivertest.Unit(timer, "enabled", "false", "true", controllers.OpEnable),
				drivertest.Unit(timer, "active", "false", "true", controllers.OpStart),
			}},
		{"failed unit is started again", host{units(unit(timer, yes, yes)), onTimer, only(timer, "failed", "failed")},
			[]controllers.Action{drivertest.Unit(timer, "active", "false", "true", controllers.OpStart)}},
		{"only active declared: enablement never touched",
			host{
				units(unit(timer, nil, yes), unit("y.service", nil, no)),
				append(offTimer, file("/etc/systemd/system/y.service", "enabled")),
				[]sd.UnitStatus{loaded(timer, "inactive", "dead"), loaded("y.service", "active", "running")},
			},
			[]controllers.Action{
				drivertest.Unit(timer, "active", "false", "true", controllers.OpStart),
				drivertest.Unit("y.service", "active", "true", "false", controllers.OpStop),
			}},
		{"only enabled declared: activity never touched", host{units(unit(timer, no, nil)), onTimer, only(timer, "active", "waiting")},
			[]controllers.Action{drivertest.Unit(timer, "enabled", "true", "false", controllers.OpDisable)}},
		{"masked unit asked to be enabled is unsupported",
			host{
				units(unit("x.service", yes, nil)),
				[]sd.UnitFile{file("/etc/systemd/system/x.service", "masked")},
				[]sd.UnitStatus{{Name: "x.service", LoadState: "masked", ActiveState: "inactive", SubState: "dead"}},
			},
			[]controllers.Action{drivertest.Unit("x.service", "enabled", "masked", "true", controllers.OpUnsupported)}},
		{"static unit asked to be enabled is unsupported, but is started",
			host{units(unit("x.service", yes, yes)), []sd.UnitFile{file("/lib/systemd/system/x.service", "static")}, nil},
			[]controllers.Action{
				drivertest.Unit("x.service", "enabled", "static", "true", controllers.OpUnsupported),
				drivertest.Unit("x.service", "active", "false", "true", controllers.OpStart),
			}},
		{"static unit asked to be disabled: already is",
			host{units(unit("x.service", no, nil)), []sd.UnitFile{file("/lib/systemd/system/x.service", "static")}, nil}, nil},
		{"missing unit",
			host{units(unit(timer, yes, yes)), nil, []sd.UnitStatus{{Name: timer, LoadState: "not-found", ActiveState: "inactive", SubState: "dead"}}},
			[]controllers.Action{drivertest.Unit(timer, "unit", "absent", "present", controllers.OpMissing)}},
		{"missing template", host{services(poller(5)), nil, nil}, []controllers.Action{serviceAction("usm-poller", "absent", "5", controllers.OpMissing)}},
		{"template scale up 1 -> 5", template(5, "active"), []controllers.Action{serviceAction("usm-poller", "1", "5", controllers.OpScaleUp)}},
		{"template scale up from 0, some instances failed", template(3, "failed", "-", "inactive", "failed"),
			[]controllers.Action{serviceAction("usm-poller", "0", "3", controllers.OpScaleUp)}},
		{"template scale down 5 -> 2", template(2, "active", "active", "active", "active", "active"),
			[]controllers.Action{serviceAction("usm-poller", "5", "2", controllers.OpScaleDown)}},
		{"template to 0 stops activating instances too", template(0, "active", "activating", "failed"),
			[]controllers.Action{serviceAction("usm-poller", "2", "0", controllers.OpScaleDown)}},
		{"template with the right count of the wrong instances", template(2, "active", "-", "active"),
			[]controllers.Action{serviceAction("usm-poller", "2", "1", controllers.OpScaleDown), serviceAction("usm-poller", "1", "2", controllers.OpScaleUp)}},
		{"template: extras that are not running are left alone",
			host{
				services(poller(2)),
				pollerFiles,
				append(pollers("active", "activating", "failed", "inactive"), loaded("usm-poller@foo.service", "active", "running")),
			}, nil},
		{"plain-unit service 0 -> 1", host{services(plain("factory-broker", 1)), brokerFile("disabled"), nil},
			[]controllers.Action{serviceAction("factory-broker", "0", "1", controllers.OpScaleUp)}},
		{"plain-unit service 1 -> 0", host{services(plain("factory-broker", 0)), brokerFile("disabled"), only("factory-broker.service", "active", "running")},
			[]controllers.Action{serviceAction("factory-broker", "1", "0", controllers.OpScaleDown)}},
		{"report-only mode is carried on every action",
			host{
				v1.HostSpec{Drift: v1.DriftReport, Units: []v1.Unit{unit(timer, no, no)}, Services: []v1.Service{poller(3)}},
				append(onTimer, pollerFile),
				append(pollers("active"), loaded(timer, "active", "waiting")),
			},
			[]controllers.Action{
				drivertest.ReportOnly(serviceAction("usm-poller", "1", "3", controllers.OpScaleUp)),
				drivertest.ReportOnly(drivertest.Unit(timer, "active", "true", "false", controllers.OpStop)),
				drivertest.ReportOnly(drivertest.Unit(timer, "enabled", "true", "false", controllers.OpDisable)),
			}},
		{"report-only on one target only",
			host{
				v1.HostSpec{Units: []v1.Unit{{Name: timer, Active: no, Drift: v1.DriftReport}}, Services: []v1.Service{poller(3)}},
				append(onTimer, pollerFile),
				append(pollers("active"), loaded(timer, "active", "waiting")),
			},
			[]controllers.Action{
				serviceAction("usm-poller", "1", "3", controllers.OpScaleUp),
				drivertest.ReportOnly(drivertest.Unit(timer, "active", "true", "false", controllers.OpStop)),
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			drivertest.CheckActions(t, Plan(tc.live()), tc.want)
		})
	}
}

func TestHealth(t *testing.T) {
	cases := []struct {
		name string
		host
		ready, drained bool
	}{
		{"unit ready", host{units(unit(timer, yes, yes)), onTimer, only(timer, "active", "waiting")}, true, true},
		{"unit not ready while activating", host{units(unit(timer, yes, yes)), onTimer, only(timer, "activating", "start")}, false, true},
		{"unit not ready while not enabled", host{units(unit(timer, yes, yes)), offTimer, only(timer, "active", "waiting")}, false, true},
		{
			// Plan reports enabling a static unit as unsupported and still
			// starts it; the engine then waits for it to be ready.
			name:  "static unit asked to be enabled: ready once active",
			host:  host{units(unit("x.service", yes, yes)), []sd.UnitFile{file("/lib/systemd/system/x.service", "static")}, only("x.service", "active", "running")},
			ready: true, drained: true,
		},
		{"unit with only enabled declared ignores activity", host{units(unit(timer, no, nil)), offTimer, only(timer, "activating", "start")}, true, true},
		{"stopped unit, inactive: drained", host{units(unit(timer, no, no)), offTimer, only(timer, "inactive", "dead")}, true, true},
		{"stopped unit, failed: drained", host{units(unit(timer, no, no)), offTimer, only(timer, "failed", "failed")}, true, true},
		{"stopped unit, not even loaded: drained", host{units(unit(timer, no, no)), offTimer, nil}, true, true},
		{"stopped unit still deactivating: not drained", host{units(unit(timer, no, no)), offTimer, only(timer, "deactivating", "stop-sigterm")}, false, false},
		{"missing unit", host{units(unit(timer, yes, yes)), nil, nil}, false, false},
		{"template ready: exactly @1..@3 active", template(3, "active", "active", "active"), true, true},
		{"template ready: extras failed or inactive do not run",
			host{services(poller(2)), pollerFiles, append(pollers("active", "active", "failed", "inactive"), loaded("usm-poller@foo.service", "active", "running"))},
			true, true},
		{"template not ready while an instance is activating", template(3, "active", "active", "activating"), false, true},
		{"template not ready while an instance is missing", template(3, "active", "active"), false, true},
		{"template not drained while an extra is deactivating", template(2, "active", "active", "deactivating"), false, false},
		{"template not drained while an extra runs", template(2, "active", "active", "active"), false, false},
		{"template with the right count of the wrong instances", template(2, "active", "-", "active"), false, false},
		{"template at 0, all stopped", template(0, "inactive", "failed"), true, true},
		{"plain-unit service stopping: not drained",
			host{services(plain("factory-broker", 0)), brokerFile("enabled"), only("factory-broker.service", "deactivating", "stop-sigterm")}, false, false},
		{"plain-unit service running", host{services(plain("factory-broker", 1)), brokerFile("enabled"), only("factory-broker.service", "active", "running")},
			true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts, live := tc.live()
			h := Health(ts[0], live[ts[0].Subject()])
			if h.Ready != tc.ready || h.Drained != tc.drained {
				t.Errorf("Health = %+v, want ready %v, drained %v", h, tc.ready, tc.drained)
			}
		})
	}
}

func TestInstanceChanges(t *testing.T) {
	cases := []struct {
		name            string
		service         v1.Service
		units           []sd.UnitStatus
		toStop, toStart []string
	}{
		{"stops highest first, starts lowest first", poller(4), pollers("active", "-", "inactive", "failed", "active", "activating", "-", "active"),
			[]string{"usm-poller@8.service", "usm-poller@6.service", "usm-poller@5.service"},
			[]string{"usm-poller@2.service", "usm-poller@3.service", "usm-poller@4.service"}},
		{"all to 0", poller(0), pollers("active", "active", "reloading"), []string{"usm-poller@3.service", "usm-poller@2.service", "usm-poller@1.service"},
			nil},
		{"in place", poller(2), pollers("active", "activating"), nil, nil},
		{"plain unit to start", plain("factory-broker", 1), only("factory-broker.service", "failed", "failed"), nil, []string{"factory-broker.service"}},
		{"plain unit to stop", plain("factory-broker", 0), only("factory-broker.service", "active", "running"), []string{"factory-broker.service"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(services(tc.service))
			files := []sd.UnitFile{pollerFile, file("/etc/systemd/system/factory-broker.service", "enabled")}
			toStop, toStart := instanceChanges(ts[0], liveFrom(ts, files, tc.units)[ts[0].Subject()])
			if !reflect.DeepEqual([]string(toStop), tc.toStop) || !reflect.DeepEqual([]string(toStart), tc.toStart) {
				t.Errorf("instanceChanges = stop %q, start %q; want stop %q, start %q", toStop, toStart, tc.toStop, tc.toStart)
			}
		})
	}
}
