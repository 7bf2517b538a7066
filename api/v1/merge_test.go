package v1

import (
	"reflect"
	"testing"
	"time"
)

func TestMergeListsByNameScalarsOverride(t *testing.T) {
	base := HostSpec{
		Maintenance: &Maintenance{Enabled: Ptr(true), Reason: "plant shutdown"},
		Drift:       DriftReport,
		Services: []Service{
			{Name: "broker", Replicas: Ptr[int32](1), StopTimeout: NewDuration(time.Second)},
			{Name: "poller", Driver: DriverSystemd, Autoscale: &Autoscale{
				AMQP: &AMQPQueue{URLFile: "/etc/amqp"}, Min: Ptr[int32](2), Max: Ptr[int32](10)}},
		},
		Units: []Unit{{Name: "a.timer", Enabled: Ptr(true), Active: Ptr(true)}},
	}
	over := HostSpec{
		Maintenance: &Maintenance{Enabled: Ptr(false)},
		Services: []Service{
			{Name: "poller", Autoscale: &Autoscale{AMQP: &AMQPQueue{Queue: "q7"}, Min: Ptr[int32](0)}},
			{Name: "proxy", Replicas: Ptr[int32](0), DependsOn: []string{"broker"}},
			{Name: "broker", Replicas: Ptr[int32](0), Ready: &Probe{TCP: "127.0.0.1:1"}},
		},
		Units: []Unit{{Name: "a.timer", Active: Ptr(false)}},
	}
	var got HostSpec
	o := Origins{}
	Merge(&got, &base, func(idx string) Pos { return Pos{"base.yaml", 1, 1} }, o)
	Merge(&got, &over, func(idx string) Pos { return Pos{"over.yaml", 2, 2} }, o)

	want := HostSpec{
		Maintenance: &Maintenance{Enabled: Ptr(false), Reason: "plant shutdown"},
		Drift:       DriftReport,
		Services: []Service{
			{Name: "broker", Replicas: Ptr[int32](0), StopTimeout: NewDuration(time.Second), Ready: &Probe{TCP: "127.0.0.1:1"}},
			{Name: "poller", Driver: DriverSystemd, Autoscale: &Autoscale{
				AMQP: &AMQPQueue{URLFile: "/etc/amqp", Queue: "q7"}, Min: Ptr[int32](0), Max: Ptr[int32](10)}},
			{Name: "proxy", Replicas: Ptr[int32](0), DependsOn: []string{"broker"}},
		},
		Units: []Unit{{Name: "a.timer", Enabled: Ptr(true), Active: Ptr(false)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged:\n got %+v\nwant %+v", got, want)
	}
	for idx, file := range map[string]string{
		"spec.maintenance.enabled":                      "over.yaml",
		"spec.maintenance.reason":                       "base.yaml",
		"spec.services[0].replicas":                     "over.yaml",
		"spec.services[0].stopTimeout":                  "base.yaml",
		"spec.services[1].autoscale.amqp.urlFile":       "base.yaml",
		"spec.services[1].autoscale.amqp.queue":         "over.yaml",
		"spec.services[2]":                              "over.yaml",
		"spec.services[2].dependsOn[0]":                 "over.yaml",
		"spec.units[0].enabled":                         "base.yaml",
		"spec.units[0].active":                          "over.yaml",
		"spec.services[1].autoscale.max":                "base.yaml",
		"spec.services[1].autoscale.messagesPerReplica": "base.yaml", // not set: its parent's origin
	} {
		if got := o.Locate(idx).File; got != file {
			t.Errorf("origin of %s = %q, want %q", idx, got, file)
		}
	}
	// The merged spec shares no memory with its sources.
	*base.Services[0].StopTimeout = Duration{time.Hour}
	if got.Services[0].StopTimeout.Duration != time.Second {
		t.Error("merged spec aliases its source")
	}
}

func TestMergeReplacesProbesWhole(t *testing.T) {
	base := HostSpec{Services: []Service{{Name: "a", Ready: &Probe{TCP: "127.0.0.1:1", Timeout: NewDuration(time.Second)}}}}
	over := HostSpec{Services: []Service{{Name: "a", Ready: &Probe{HTTP: "http://127.0.0.1/"}}}}
	var got HostSpec
	loc := func(string) Pos { return Pos{} }
	Merge(&got, &base, loc, Origins{})
	Merge(&got, &over, loc, Origins{})
	if p := got.Services[0].Ready; p.TCP != "" || p.Timeout != nil || p.HTTP != "http://127.0.0.1/" {
		t.Errorf("probe = %+v, want the later probe alone", p)
	}
}

func TestMergeEmptyListClears(t *testing.T) {
	base := HostSpec{Services: []Service{{Name: "a", DependsOn: []string{"b"}}}}
	over := HostSpec{Services: []Service{{Name: "a", DependsOn: []string{}}}}
	var got HostSpec
	loc := func(string) Pos { return Pos{} }
	Merge(&got, &base, loc, Origins{})
	Merge(&got, &over, loc, Origins{})
	if d := got.Services[0].DependsOn; d == nil || len(d) != 0 {
		t.Errorf("dependsOn = %#v, want an empty list", d)
	}
}

// TestSpecTypesHaveNoPlainScalars keeps every optional number and boolean a
// pointer: Merge cannot tell "said 0" from "said nothing" otherwise.
func TestSpecTypesHaveNoPlainScalars(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var check func(t0 reflect.Type, where string)
	check = func(t0 reflect.Type, where string) {
		for t0.Kind() == reflect.Pointer || t0.Kind() == reflect.Slice || t0.Kind() == reflect.Map {
			t0 = t0.Elem()
		}
		if t0.Kind() != reflect.Struct || isLeafStruct(t0) || seen[t0] {
			return
		}
		seen[t0] = true
		for i := 0; i < t0.NumField(); i++ {
			f := t0.Field(i)
			switch f.Type.Kind() {
			case reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint64, reflect.Float64:
				t.Errorf("%s.%s is a plain %s; make it a pointer", where, f.Name, f.Type)
			}
			check(f.Type, t0.Name())
		}
	}
	check(reflect.TypeOf(HostSpec{}), "HostSpec")
}

func TestSetDefaults(t *testing.T) {
	s := HostSpec{
		Services: []Service{
			{Name: "swarm-svc", Replicas: Ptr[int32](1), Ready: &Probe{TCP: "127.0.0.1:1"}},
			{Name: "unit-svc", Driver: DriverSystemd, Drift: DriftEnforce},
			{Name: "sup", Driver: DriverSupervisor},
			{Name: "dt", Driver: DriverDaemontools},
			{Name: "auto", Autoscale: &Autoscale{Min: Ptr[int32](3), Max: Ptr[int32](9)}},
		},
		Units: []Unit{{Name: "a.timer"}},
		Drift: DriftReport,
	}
	SetDefaults(&s)
	sv := s.Services
	if sv[0].Driver != DriverSwarm || sv[0].Maintenance != MaintenanceStop || sv[0].Drift != DriftReport ||
		sv[0].StopTimeout.Duration != DefaultStopTimeout || sv[0].Ready.Timeout.Duration != DefaultProbeTimeout ||
		sv[0].Ready.Interval.Duration != DefaultProbeInterval {
		t.Errorf("swarm defaults: %+v / %+v", sv[0], sv[0].Ready)
	}
	if sv[1].Unit != "unit-svc.service" || sv[1].Drift != DriftEnforce {
		t.Errorf("systemd defaults: %+v", sv[1])
	}
	if sv[2].Program != "sup" || sv[2].Socket != DefaultSupervisorSocket {
		t.Errorf("supervisor defaults: %+v", sv[2])
	}
	if sv[3].Dir != "/service/dt" || sv[3].OnNotReady != OnNotReadyDown {
		t.Errorf("daemontools defaults: %+v", sv[3])
	}
	a := sv[4].Autoscale
	if *sv[4].Replicas != 3 || *a.MessagesPerReplica != DefaultMessagesPerReplica ||
		a.Cooldown.Duration != DefaultCooldown || *a.MaxStepDown != DefaultMaxStepDown {
		t.Errorf("autoscale defaults: replicas %d, %+v", *sv[4].Replicas, a)
	}
	if u := s.Units[0]; u.Maintenance != MaintenanceStop || u.Drift != DriftReport {
		t.Errorf("unit defaults: %+v", u)
	}
}
