package systemd

import "context"

// Bus returns the driver's connection to the system bus, connecting (or
// reconnecting, when systemd restarted) as every driver call does. Readers
// that need more of systemd than the driver does (the resource monitor)
// share the one connection; the real connection is go-systemd's *dbus.Conn,
// which they may type-assert to the narrow interface they need.
func (d *Driver) Bus(ctx context.Context) (API, error) { return d.api(ctx) }
