package callcount

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeBus accepts connections on a unix socket and records, per connection,
// every byte and file descriptor it receives. It answers nothing by itself;
// tests write to its side of a connection when they want to.
type fakeBus struct {
	socket string
	ln     *net.UnixListener
	conns  chan *busConn
	wg     sync.WaitGroup
}

type busConn struct {
	c    *net.UnixConn
	mu   sync.Mutex
	got  []byte
	fds  []*os.File
	eof  bool
	cond *sync.Cond
}

func startFakeBus(t *testing.T) *fakeBus {
	t.Helper()
	b := &fakeBus{socket: sockPath(t, "bus.sock"), conns: make(chan *busConn, 100)}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: b.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	b.ln = ln
	var mu sync.Mutex
	var all []*busConn
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			bc := &busConn{c: c}
			bc.cond = sync.NewCond(&bc.mu)
			mu.Lock()
			all = append(all, bc)
			mu.Unlock()
			b.conns <- bc
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				buf := make([]byte, 4096)
				oob := make([]byte, syscall.CmsgSpace(16*4))
				for {
					n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
					n, oobn = max(n, 0), max(oobn, 0)
					bc.mu.Lock()
					bc.got = append(bc.got, buf[:n]...)
					for _, fd := range unixRights(oob[:oobn]) {
						bc.fds = append(bc.fds, os.NewFile(uintptr(fd), "passed"))
					}
					if err != nil {
						bc.eof = true
					}
					bc.cond.Broadcast()
					bc.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, bc := range all {
			bc.c.Close()
			for _, f := range bc.fds {
				f.Close()
			}
		}
		mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *fakeBus) accept(t *testing.T) *busConn {
	t.Helper()
	select {
	case bc := <-b.conns:
		return bc
	case <-time.After(5 * time.Second):
		t.Fatal("the proxy did not connect upstream")
		return nil
	}
}

// waitFor waits until the connection has received n bytes, or EOF.
func (bc *busConn) waitFor(t *testing.T, n int) []byte {
	t.Helper()
	timer := time.AfterFunc(5*time.Second, func() {
		bc.mu.Lock()
		bc.eof = true
		bc.cond.Broadcast()
		bc.mu.Unlock()
	})
	defer timer.Stop()
	bc.mu.Lock()
	defer bc.mu.Unlock()
	for len(bc.got) < n && !bc.eof {
		bc.cond.Wait()
	}
	if len(bc.got) < n {
		t.Fatalf("upstream got %d bytes, want %d", len(bc.got), n)
	}
	return bytes.Clone(bc.got)
}

func (bc *busConn) waitEOF(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		bc.mu.Lock()
		eof := bc.eof
		bc.mu.Unlock()
		if eof {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("upstream connection still open")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newDBusProxy(t *testing.T, upstream string) *DBusProxy {
	t.Helper()
	return startProxy(t, "dbus.sock", upstream, NewDBusProxy)
}

func dialProxy(t *testing.T, p *DBusProxy) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: p.Socket(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func busCall(ord binary.ByteOrder, serial uint32, member string) []byte {
	return message(ord, msgMethodCall, serial, []field{
		{fieldPath, "o", "/org/freedesktop/DBus"},
		{fieldDestination, "s", "org.freedesktop.DBus"},
		{fieldInterface, "s", "org.freedesktop.DBus"},
		{fieldMember, "s", member},
	}, nil)
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestDBusProxyForwardsAndCounts: bytes pass unchanged both ways, file
// descriptors pass both ways and work, method calls are counted by member
// and kind, and nothing else is.
func TestDBusProxyForwardsAndCounts(t *testing.T) {
	noLeaks(t)
	fdsBefore := openFDs(t)
	t.Cleanup(func() {
		// Runs after the proxy and the fake bus are closed: every
		// descriptor the proxy received was closed once passed on.
		deadline := time.Now().Add(5 * time.Second)
		for openFDs(t) > fdsBefore && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := openFDs(t); n > fdsBefore {
			t.Errorf("%d descriptors open, %d before", n, fdsBefore)
		}
	})
	bus := startFakeBus(t)
	p := newDBusProxy(t, "unix:path="+bus.socket+",guid=0123")
	if p.Address() != "unix:path="+p.Socket() {
		t.Fatalf("Address() = %q", p.Address())
	}
	client := dialProxy(t, p)
	server := bus.accept(t)
	ord := binary.LittleEndian

	// The client side: SASL, then calls of every kind, sent in odd pieces.
	var sent []byte
	send := func(b []byte) {
		t.Helper()
		for len(b) > 0 {
			n := min(len(b), 7)
			if _, err := client.Write(b[:n]); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, b[:n]...)
			b = b[n:]
		}
	}
	send([]byte(authPrefix))
	send(busCall(ord, 1, "Hello"))
	send(busCall(ord, 2, "AddMatch"))
	send(call(ord, 3, "ListUnitsByPatterns", nil))
	send(message(ord, msgMethodCall, 4, []field{
		{fieldPath, "o", "/org/freedesktop/systemd1/unit/a_2etimer"},
		{fieldDestination, "s", "org.freedesktop.systemd1"},
		{fieldInterface, "s", "org.freedesktop.DBus.Properties"},
		{fieldMember, "s", "GetAll"},
	}, nil))
	send(message(ord, msgSignal, 5, []field{
		{fieldPath, "o", "/a"}, {fieldInterface, "s", "a.b"}, {fieldMember, "s", "StartUnit"},
	}, nil))
	send(message(binary.BigEndian, msgMethodCall, 6, []field{
		{fieldPath, "o", "/org/freedesktop/DBus"}, {fieldInterface, "s", "org.freedesktop.DBus.Peer"}, {fieldMember, "s", "Ping"},
	}, nil))
	send(call(binary.BigEndian, 7, "Reload", nil))

	// A call with a descriptor, sent the way godbus sends one: with the
	// message's bytes in one sendmsg.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	withFD := call(ord, 8, "StartUnit", strBody(ord, "x.service"))
	if _, _, err := client.WriteMsgUnix(withFD, syscall.UnixRights(int(w.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	sent = append(sent, withFD...)

	if got := server.waitFor(t, len(sent)); !bytes.Equal(got, sent) {
		t.Fatalf("upstream got %d bytes that differ from the %d sent", len(got), len(sent))
	}
	server.mu.Lock()
	passed := server.fds
	server.mu.Unlock()
	if len(passed) != 1 {
		t.Fatalf("upstream got %d descriptors, want 1", len(passed))
	}
	if _, err := passed[0].WriteString("through"); err != nil {
		t.Fatal(err)
	}
	passed[0].Close()
	b := make([]byte, len("through"))
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(r, b); err != nil || string(b) != "through" {
		t.Fatalf("read %q, %v through the passed pipe", b, err)
	}
	r.Close()

	// The server side: lines, a signal, and a descriptor back.
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	answer := []byte("OK 0123456789abcdef\r\nAGREE_UNIX_FD\r\n")
	answer = append(answer, message(ord, msgSignal, 1, []field{
		{fieldPath, "o", "/org/freedesktop/systemd1"}, {fieldInterface, "s", "org.freedesktop.systemd1.Manager"},
		{fieldMember, "s", "JobRemoved"},
	}, nil)...)
	if _, _, err := server.c.WriteMsgUnix(answer, syscall.UnixRights(int(r2.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	r2.Close()
	var back []byte
	var backFDs []int
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(back) < len(answer) {
		n, oobn, _, _, err := client.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, buf[:n]...)
		backFDs = append(backFDs, unixRights(oob[:oobn])...)
	}
	if !bytes.Equal(back, answer) || len(backFDs) != 1 {
		t.Fatalf("client got %q and %d descriptors, want %q and 1", back, len(backFDs), answer)
	}
	rf := os.NewFile(uintptr(backFDs[0]), "back")
	w2.WriteString("back")
	w2.Close()
	b = b[:len("back")]
	rf.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(rf, b); err != nil || string(b) != "back" {
		t.Fatalf("read %q, %v through the pipe passed back", b, err)
	}
	rf.Close()

	want := map[string]int{"Hello": 1, "AddMatch": 1, "ListUnitsByPatterns": 1, "GetAll": 1, "Ping": 1, "Reload": 1, "StartUnit": 1}
	if got := p.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Counts() = %v, want %v", got, want)
	}
	if p.Housekeeping() != 3 || p.Reads() != 2 || p.Mutating() != 2 || p.Total() != 7 {
		t.Fatalf("Housekeeping %d Reads %d Mutating %d Total %d, want 3 2 2 7", p.Housekeeping(), p.Reads(), p.Mutating(), p.Total())
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	log := p.Log()
	var kinds []string
	for i, c := range log {
		kinds = append(kinds, c.Member+":"+c.Kind.String())
		if c.Conn != 1 || c.Serial != uint32(map[int]int{0: 1, 1: 2, 2: 3, 3: 4, 4: 6, 5: 7, 6: 8}[i]) {
			t.Fatalf("Log()[%d] = %+v", i, c)
		}
	}
	wantKinds := []string{"Hello:housekeeping", "AddMatch:housekeeping", "ListUnitsByPatterns:read", "GetAll:read",
		"Ping:housekeeping", "Reload:mutating", "StartUnit:mutating"}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Fatalf("Log() = %q, want %q", kinds, wantKinds)
	}
	if l := log[6]; l.Interface != "org.freedesktop.systemd1.Manager" || l.Destination != "org.freedesktop.systemd1" ||
		l.Path != "/org/freedesktop/systemd1" || l.Key != "StartUnit" {
		t.Fatalf("Log()[6] = %+v", l)
	}

	p.Reset()
	if len(p.Counts()) != 0 || p.Total() != 0 || p.Housekeeping() != 0 || len(p.Log()) != 0 {
		t.Fatal("Reset left counts")
	}
	// The stream goes on after Reset.
	client.Write(call(ord, 9, "StopUnit", nil))
	server.waitFor(t, len(sent)+len(call(ord, 9, "StopUnit", nil)))
	if got := p.Counts(); !reflect.DeepEqual(got, map[string]int{"StopUnit": 1}) {
		t.Fatalf("after Reset: %v", got)
	}

	client.Close()
	server.waitEOF(t)
}

// TestDBusProxyConcurrent: many connections at once, each its own stream,
// every call counted under the right connection.
func TestDBusProxyConcurrent(t *testing.T) {
	noLeaks(t)
	bus := startFakeBus(t)
	p := newDBusProxy(t, bus.socket)

	const clients, each = 20, 50
	go func() {
		// Drain: the fake bus records; nothing to do but accept.
		for range clients {
			<-bus.conns
		}
	}()
	concurrently(t, clients, func(i int) error {
		c, err := net.Dial("unix", p.Socket())
		if err != nil {
			return err
		}
		defer c.Close()
		rng := rand.New(rand.NewSource(int64(i)))
		stream := []byte(authPrefix)
		for j := 1; j <= each; j++ {
			member := "ListUnitsByPatterns"
			if j%10 == 0 {
				member = "StartUnit"
			}
			body := make([]byte, rng.Intn(64))
			stream = append(stream, call(binary.LittleEndian, uint32(j), member, body)...)
		}
		for len(stream) > 0 {
			n := min(len(stream), 1+rng.Intn(300))
			if _, err := c.Write(stream[:n]); err != nil {
				return err
			}
			stream = stream[n:]
		}
		_ = p.Counts()
		return nil
	})
	// Counted before forwarded, but the writes above may still sit in the
	// proxy's socket buffer: wait for them.
	deadline := time.Now().Add(5 * time.Second)
	for p.Total() < clients*each && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	want := map[string]int{"ListUnitsByPatterns": clients * each * 9 / 10, "StartUnit": clients * each / 10}
	if got := p.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Counts() = %v, want %v", got, want)
	}
	perConn := map[uint64]int{}
	for _, c := range p.Log() {
		perConn[c.Conn]++
	}
	if len(perConn) != clients {
		t.Fatalf("calls on %d connections, want %d", len(perConn), clients)
	}
	for conn, n := range perConn {
		if n != each || conn < 1 || conn > clients {
			t.Fatalf("connection %d: %d calls, want %d", conn, n, each)
		}
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestDBusProxyClose: Close ends live connections on both sides, removes
// the socket, and leaves no goroutine behind; a bus that hangs up hangs up
// the client too.
func TestDBusProxyClose(t *testing.T) {
	noLeaks(t)
	bus := startFakeBus(t)
	p := openProxy(t, "dbus.sock", bus.socket, NewDBusProxy)
	var clients []*net.UnixConn
	var servers []*busConn
	for range 5 {
		c := dialProxy(t, p)
		c.Write([]byte(authPrefix))
		clients = append(clients, c)
		servers = append(servers, bus.accept(t))
	}

	// The bus hangs up on the first client.
	servers[0].c.Close()
	clients[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	// Hung up is EOF, or a reset when the proxy closed with bytes of the
	// client's still unread (the kernel then sends RST): both end the stream.
	if _, err := clients[0].Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client of a closed bus connection read: %v, want EOF or a reset", err)
	}

	closeWithin(t, p)
	for i, c := range clients[1:] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("client %d after Close read: %v, want EOF or a reset", i+1, err)
		}
		servers[i+1].waitEOF(t)
	}
	closedForGood(t, p)
	if _, err := net.Dial("unix", p.Socket()); err == nil {
		t.Fatal("dialled the proxy after Close")
	}
}

// TestDBusProxyErr: a stream the parser cannot follow is still forwarded,
// and Err says the counts are incomplete; Reset clears it.
func TestDBusProxyErr(t *testing.T) {
	noLeaks(t)
	bus := startFakeBus(t)
	p := newDBusProxy(t, bus.socket)
	c := dialProxy(t, p)
	server := bus.accept(t)
	stream := append([]byte(authPrefix), call(binary.LittleEndian, 1, "StartUnit", nil)...)
	stream = append(stream, "not a message at all, but bytes nonetheless"...)
	stream = append(stream, call(binary.LittleEndian, 2, "StopUnit", nil)...)
	c.Write(stream)
	if got := server.waitFor(t, len(stream)); !bytes.Equal(got, stream) {
		t.Fatal("bytes changed")
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "endianness") {
		t.Fatalf("Err() = %v, want an endianness error", err)
	}
	if got := p.Counts(); !reflect.DeepEqual(got, map[string]int{"StartUnit": 1}) {
		t.Fatalf("Counts() = %v", got)
	}
	p.Reset()
	if p.Err() != nil {
		t.Fatal("Reset kept Err")
	}
}

// TestDBusProxyUpstreamDown: with no bus, a client's connection is closed.
func TestDBusProxyUpstreamDown(t *testing.T) {
	noLeaks(t)
	p := newDBusProxy(t, sockPath(t, "nobody.sock"))
	c := dialProxy(t, p)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
}

func TestParseBusAddress(t *testing.T) {
	for in, want := range map[string]string{
		"":                                      DefaultSystemBus,
		"/run/x.sock":                           "/run/x.sock",
		"unix:path=/run/dbus/system_bus_socket": "/run/dbus/system_bus_socket",
		"unix:path=/run/a%20b,guid=abc":         "/run/a b",
		"tcp:host=x,port=1;unix:path=/run/y":    "/run/y",
		"unix:abstract=/tmp/dbus-XYZ":           "@/tmp/dbus-XYZ",
		"tcp:host=x,port=1":                     "error",
	} {
		got, err := parseBusAddress(in)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("parseBusAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDBusKinds: the members the reconciler's claims rest on are sorted
// into the right kind.
func TestDBusKinds(t *testing.T) {
	const mgr, sd = "org.freedesktop.systemd1.Manager", "org.freedesktop.systemd1"
	for _, m := range []string{"StartUnit", "StopUnit", "RestartUnit", "TryRestartUnit",
		"ReloadOrRestartUnit", "KillUnit", "ResetFailedUnit", "EnableUnitFiles", "DisableUnitFiles",
		"ReenableUnitFiles", "MaskUnitFiles", "UnmaskUnitFiles", "Reload", "SetUnitProperties",
		"StartTransientUnit", "LinkUnitFiles", "PresetUnitFiles"} {
		if k := dbusKind(msgHeader{Destination: sd, Interface: mgr, Member: m}); k != KindMutating {
			t.Errorf("%s is %s, want mutating", m, k)
		}
	}
	for _, m := range []string{"ListUnits", "ListUnitsByPatterns", "ListUnitsByNames", "ListUnitFilesByPatterns",
		"GetUnitFileState", "GetUnit", "LoadUnit", "ListJobs"} {
		if k := dbusKind(msgHeader{Destination: sd, Interface: mgr, Member: m}); k != KindRead {
			t.Errorf("%s is %s, want read", m, k)
		}
	}
	for _, h := range []msgHeader{
		{Destination: busDriver, Interface: busDriver, Member: "Hello"},
		{Destination: busDriver, Interface: busDriver, Member: "AddMatch"},
		{Destination: busDriver, Member: "RemoveMatch"},
		{Interface: busDriver, Member: "GetNameOwner"},
		{Destination: sd, Interface: "org.freedesktop.DBus.Peer", Member: "Ping"},
	} {
		if k := dbusKind(h); k != KindHousekeeping {
			t.Errorf("%+v is %s, want housekeeping", h, k)
		}
	}
	props := "org.freedesktop.DBus.Properties"
	if k := dbusKind(msgHeader{Destination: sd, Interface: props, Member: "Get"}); k != KindRead {
		t.Errorf("Properties.Get is %s", k)
	}
	if k := dbusKind(msgHeader{Destination: sd, Interface: props, Member: "Set"}); k != KindMutating {
		t.Errorf("Properties.Set is %s", k)
	}
	list := DBusMutatingMembers()
	if !slices.IsSorted(list) || !slices.Contains(list, "StartUnit") {
		t.Errorf("DBusMutatingMembers() = %q", list)
	}
	list[0] = "changed"
	if DBusMutatingMembers()[0] == "changed" {
		t.Error("DBusMutatingMembers() shares its backing array")
	}
}
