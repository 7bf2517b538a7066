package callcount

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultSystemBus is where NewDBusProxy forwards to when given no upstream.
const DefaultSystemBus = "/var/run/dbus/system_bus_socket"

// DBusProxy is a counting proxy between D-Bus clients and a bus (or systemd's
// private socket), both on unix sockets. Point the code under test at it with
// DBUS_SYSTEM_BUS_ADDRESS=p.Address().
//
// Bytes pass unchanged in both directions. Unix file descriptors that either
// side sends (SCM_RIGHTS) are passed on with the bytes they came with, so a
// client that negotiated NEGOTIATE_UNIX_FD (godbus does) keeps working even
// if it sends or receives descriptors. The bus sees the proxy as its peer:
// SASL EXTERNAL authenticates the proxy process's uid, which is the client's
// when both run as the same user.
//
// Only the client-to-server stream is parsed, and only METHOD_CALL messages
// are counted, by member name. Each call is one of three kinds:
//
//   - housekeeping: calls to the bus daemon itself (destination or interface
//     org.freedesktop.DBus: Hello, AddMatch, RemoveMatch, GetNameOwner,
//     NameHasOwner, ListNames, RequestName, ReleaseName, GetId,
//     GetConnectionUnixUser, ...) and org.freedesktop.DBus.Peer calls (Ping,
//     GetMachineId). They run the connection, they do not touch systemd; they
//     are in Counts, Log and Total but neither in Reads nor in Mutating.
//   - mutating: the members [DBusMutatingMembers] lists, whatever the
//     interface.
//   - read: every other call (ListUnitsByPatterns, GetUnitFileState,
//     org.freedesktop.DBus.Properties.Get and GetAll, Introspect, ...).
//
// Signals and replies the client sends are not counted.
type DBusProxy struct {
	socket   string
	upstream string // a path, or "@name" for an abstract socket
	ln       *net.UnixListener
	tally    tally

	ctx    context.Context // ends with Close; upstream dials use it
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	conns   map[*net.UnixConn]struct{} // live client and upstream connections
	connSeq uint64
	err     error // first stream the proxy could not follow
	wg      sync.WaitGroup
	once    sync.Once
	cerr    error
}

// dbusMutatingList: the systemd Manager's, Unit's and Job's methods that
// change state, and org.freedesktop.DBus.Properties.Set.
var dbusMutatingList = []string{
	// The Manager methods the reconciler uses or may use.
	"StartUnit", "StopUnit", "RestartUnit", "TryRestartUnit", "ReloadOrRestartUnit",
	"ReloadOrTryRestartUnit", "ReloadUnit", "KillUnit", "ResetFailedUnit", "ResetFailed",
	"EnableUnitFiles", "DisableUnitFiles", "ReenableUnitFiles", "MaskUnitFiles",
	"UnmaskUnitFiles", "LinkUnitFiles", "PresetUnitFiles", "PresetUnitFilesWithMode",
	"PresetAllUnitFiles", "RevertUnitFiles", "EnableUnitFilesWithFlags",
	"DisableUnitFilesWithFlags", "DisableUnitFilesWithFlagsAndInstallInfo",
	"SetDefaultTarget", "Reload", "Reexecute", "SetUnitProperties", "StartTransientUnit",
	"StartUnitReplace", "StartUnitWithFlags", "EnqueueUnitJob", "CancelJob", "ClearJobs",
	"AttachProcessesToUnit", "AbandonScope", "CleanUnit", "FreezeUnit", "ThawUnit",
	"SetEnvironment", "UnsetEnvironment", "UnsetAndSetEnvironment",
	"BindMountUnit", "MountImageUnit", "QueueSignalUnit",
	"Exit", "Reboot", "SoftReboot", "PowerOff", "Halt", "KExec", "SwitchRoot",
	// The same on org.freedesktop.systemd1.Unit and .Job objects.
	"Start", "Stop", "Restart", "TryRestart", "ReloadOrRestart", "ReloadOrTryRestart",
	"Kill", "SetProperties", "Clean", "Freeze", "Thaw", "EnqueueJob", "Cancel",
	// org.freedesktop.DBus.Properties.
	"Set",
}

var dbusMutating = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range dbusMutatingList {
		m[s] = true
	}
	return m
}()

// DBusMutatingMembers returns, sorted, the method names DBusProxy counts as
// mutating: the methods of systemd's Manager, Unit and Job interfaces that
// change state (StartUnit, StopUnit, EnableUnitFiles, Reload, ...), and
// org.freedesktop.DBus.Properties.Set.
func DBusMutatingMembers() []string {
	return slices.Sorted(maps.Keys(dbusMutating))
}

const busDriver = "org.freedesktop.DBus"

func dbusKind(h msgHeader) Kind {
	switch {
	case h.Destination == busDriver, h.Interface == busDriver, h.Interface == busDriver+".Peer":
		return KindHousekeeping
	case dbusMutating[h.Member]:
		return KindMutating
	}
	return KindRead
}

// NewDBusProxy listens on the unix socket path socket (which must not exist)
// and forwards to the bus at upstream: a socket path, or a D-Bus address
// "unix:path=..." or "unix:abstract=..." (the first unix one of a list);
// "" means DefaultSystemBus.
func NewDBusProxy(socket, upstream string) (*DBusProxy, error) {
	up, err := parseBusAddress(upstream)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("callcount: %w", err)
	}
	p := &DBusProxy{socket: socket, upstream: up, ln: ln, conns: map[*net.UnixConn]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func parseBusAddress(addr string) (string, error) {
	if addr == "" {
		return DefaultSystemBus, nil
	}
	if !strings.Contains(addr, ":") || strings.HasPrefix(addr, "/") {
		return addr, nil // a plain path
	}
	for _, a := range strings.Split(addr, ";") {
		transport, params, ok := strings.Cut(a, ":")
		if !ok || transport != "unix" {
			continue
		}
		for _, kv := range strings.Split(params, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = unescapeBusValue(v)
			switch k {
			case "path":
				return v, nil
			case "abstract":
				return "@" + v, nil
			}
		}
	}
	return "", fmt.Errorf("callcount: no unix:path= or unix:abstract= in D-Bus address %q", addr)
}

// unescapeBusValue undoes the %XX escaping of D-Bus address values.
func unescapeBusValue(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			if x, ok := unhex(v[i+1]); ok {
				if y, ok := unhex(v[i+2]); ok {
					b.WriteByte(x<<4 | y)
					i += 2
					continue
				}
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (p *DBusProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: back off rather than spin.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.connSeq++
		n := p.connSeq
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(c, n)
	}
}

// track registers c so Close closes it; false if the proxy is closing.
func (p *DBusProxy) track(c *net.UnixConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *DBusProxy) untrack(c *net.UnixConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *DBusProxy) noteErr(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

func (p *DBusProxy) serve(client *net.UnixConn, n uint64) {
	defer p.wg.Done()
	defer p.untrack(client)

	var d net.Dialer
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	c, err := d.DialContext(ctx, "unix", p.upstream)
	cancel()
	if err != nil {
		return // the client sees its connection closed, as with a dead bus
	}
	server := c.(*net.UnixConn)
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)

	parser := newStreamParser(func(h msgHeader) {
		if h.Type != msgMethodCall {
			return
		}
		p.tally.add(Call{
			Conn:        n,
			Key:         h.Member,
			Kind:        dbusKind(h),
			Path:        h.Path,
			Interface:   h.Interface,
			Member:      h.Member,
			Destination: h.Destination,
			Serial:      h.Serial,
		})
	})

	done := make(chan struct{}, 2)
	go func() {
		reported := false
		// Counted before forwarded: when the reply comes, the count is in.
		pump(server, client, func(b []byte) {
			parser.feed(b)
			if parser.err != nil && !reported {
				reported = true
				p.noteErr(fmt.Errorf("connection %d: %w", n, parser.err))
			}
		}, p.noteErr)
		done <- struct{}{}
	}()
	go func() {
		pump(client, server, nil, p.noteErr)
		done <- struct{}{}
	}()
	// Either side ending ends the connection: D-Bus has no use for half a one.
	<-done
	client.Close()
	server.Close()
	<-done
}

// pump copies src to dst, file descriptors included, calling see with every
// chunk before it is written.
func pump(dst, src *net.UnixConn, see func([]byte), noteErr func(error)) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(253*4)) // SCM_MAX_FD descriptors
	for {
		n, oobn, flags, _, err := src.ReadMsgUnix(buf, oob)
		var fds []int
		if oobn > 0 {
			fds = unixRights(oob[:oobn])
			if flags&syscall.MSG_CTRUNC != 0 {
				noteErr(errors.New("file descriptors lost: control message truncated"))
			}
		}
		if n > 0 {
			if see != nil {
				see(buf[:n])
			}
			werr := writeWithFDs(dst, buf[:n], fds)
			if werr != nil {
				err = werr
			}
		}
		for _, fd := range fds {
			syscall.Close(fd) // the receiver has its own copy now, or none
		}
		if err != nil {
			return
		}
	}
}

// unixRights returns the descriptors passed in a control message buffer.
func unixRights(oob []byte) []int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_RIGHTS {
			continue
		}
		if f, err := syscall.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

// writeWithFDs writes all of b to c, the descriptors with its first byte.
func writeWithFDs(c *net.UnixConn, b []byte, fds []int) error {
	if len(fds) == 0 {
		_, err := c.Write(b)
		return err
	}
	n, _, err := c.WriteMsgUnix(b, syscall.UnixRights(fds...), nil)
	if err != nil {
		return err
	}
	// sendmsg on a stream socket may write less; the rest goes without
	// descriptors, which the kernel has already attached to the first part.
	if n < len(b) {
		_, err = c.Write(b[n:])
	}
	return err
}

// Socket is the path the proxy listens on.
func (p *DBusProxy) Socket() string { return p.socket }

// Address is the D-Bus address (DBUS_SYSTEM_BUS_ADDRESS) of the proxy.
func (p *DBusProxy) Address() string { return "unix:path=" + p.socket }

// Counts maps member names to the number of method calls since the start or
// the last Reset, housekeeping included: "StartUnit" -> 1. The map is a copy.
func (p *DBusProxy) Counts() map[string]int { return p.tally.snapshot() }

// Mutating is the number of calls of the members DBusMutatingMembers lists.
func (p *DBusProxy) Mutating() int { return p.tally.kind(KindMutating) }

// Reads is the number of calls that are neither mutating nor housekeeping.
func (p *DBusProxy) Reads() int { return p.tally.kind(KindRead) }

// Housekeeping is the number of calls to the bus daemon itself (see DBusProxy).
func (p *DBusProxy) Housekeeping() int { return p.tally.kind(KindHousekeeping) }

// Total is the number of method calls of every kind.
func (p *DBusProxy) Total() int { return p.tally.total() }

// Log is every counted call in arrival order.
func (p *DBusProxy) Log() []Call { return p.tally.calls() }

// Reset forgets every count, the log and Err.
func (p *DBusProxy) Reset() {
	p.tally.reset()
	p.mu.Lock()
	p.err = nil
	p.mu.Unlock()
}

// Err is the first problem since the start or the last Reset that makes the
// counts incomplete: a client stream the parser could not follow, or file
// descriptors that could not be passed on. Nil means every call was seen.
func (p *DBusProxy) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Close stops accepting connections, closes the live ones, and returns when
// every goroutine of the proxy has ended. Counts and Log stay readable. Close
// is safe to call more than once.
func (p *DBusProxy) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		conns := make([]*net.UnixConn, 0, len(p.conns))
		for c := range p.conns {
			conns = append(conns, c)
		}
		p.mu.Unlock()
		p.cancel()
		if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.cerr = err
		}
		for _, c := range conns {
			c.Close()
		}
	})
	p.wg.Wait()
	return p.cerr
}
