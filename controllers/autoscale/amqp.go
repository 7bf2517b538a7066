package autoscale

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Reader reads a queue's backlog.
type Reader interface {
	// Read returns the ready messages and consumers of a queue.
	Read(ctx context.Context, urlFile, queue string) (ready, consumers int, err error)
}

// AMQPReader reads queues with a passive declare over AMQP 0-9-1, keeping
// one connection per broker URL between passes. amqps:// URLs use TLS.
type AMQPReader struct {
	// Timeout bounds connecting and each declare (default 5s).
	Timeout time.Duration

	mu    sync.Mutex
	conns map[string]*amqp.Connection
}

func (r *AMQPReader) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return 5 * time.Second
}

// Read implements Reader. The URL is read from urlFile on every call, so a
// rotated credential is picked up, and it never appears in errors.
func (r *AMQPReader) Read(ctx context.Context, urlFile, queue string) (int, int, error) {
	raw, err := os.ReadFile(urlFile)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the AMQP URL: %w", err)
	}
	dsn := strings.TrimSpace(string(raw))
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
		return 0, 0, fmt.Errorf("%s does not hold an amqp:// or amqps:// URL", urlFile)
	}
	where := u.Host
	conn, err := r.conn(dsn, where)
	if err != nil {
		return 0, 0, err
	}
	type result struct {
		q   amqp.Queue
		err error
	}
	done := make(chan result, 1)
	go func() {
		ch, err := conn.Channel()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer ch.Close()
		q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		done <- result{q, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			var ae *amqp.Error
			if errors.As(res.err, &ae) && ae.Code == amqp.NotFound {
				return 0, 0, fmt.Errorf("queue %q does not exist on %s", queue, where)
			}
			r.drop(dsn)
			return 0, 0, fmt.Errorf("queue %q on %s: %w", queue, where, res.err)
		}
		return res.q.Messages, res.q.Consumers, nil
	case <-time.After(r.timeout()):
		r.drop(dsn)
		return 0, 0, fmt.Errorf("queue %q on %s: no answer within %s", queue, where, r.timeout())
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
}

func (r *AMQPReader) conn(dsn, where string) (*amqp.Connection, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.conns[dsn]; c != nil && !c.IsClosed() {
		return c, nil
	}
	c, err := amqp.DialConfig(dsn, amqp.Config{Dial: amqp.DefaultDial(r.timeout()), Heartbeat: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %v", where, scrub(err, dsn))
	}
	if r.conns == nil {
		r.conns = map[string]*amqp.Connection{}
	}
	r.conns[dsn] = c
	return c, nil
}

func (r *AMQPReader) drop(dsn string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.conns[dsn]; c != nil {
		_ = c.Close()
		delete(r.conns, dsn)
	}
}

// Close closes every connection.
func (r *AMQPReader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, c := range r.conns {
		_ = c.Close()
		delete(r.conns, k)
	}
}

// scrub keeps a URL's password out of an error text.
func scrub(err error, dsn string) string {
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "***")
		}
	}
	return msg
}
