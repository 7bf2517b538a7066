// Command worker is the process the testbed runs wherever a test needs a real
// workload: as a Swarm task (images local/worker and local/failing), as a
// systemd template instance, as a supervisord program and as a daemontools
// service. It is configured through the environment so one static binary
// serves every driver:
//
//	WORKER_NAME        name used in log lines (default: the hostname)
//	WORKER_FAIL_START  if set to 1, log the failure and exit 1 at once
//	WORKER_LISTEN      host:port to answer HTTP "ok" on (tcp and http probes)
//	WORKER_READY_DELAY wait this long before listening (a slow start)
//	WORKER_STOP_DELAY  on SIGTERM, keep "finishing tasks" this long, then exit
//	WORKER_AMQP_URL    with WORKER_QUEUE: consume that RabbitMQ queue, one
//	WORKER_QUEUE       message at a time, spending WORKER_MSG_DELAY on each
//	WORKER_MSG_DELAY   (a poller working through its jobs; seed 001)
//
// It logs every signal it receives, so tests can see a graceful stop.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	name := os.Getenv("WORKER_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix(name + " ")

	if os.Getenv("WORKER_FAIL_START") == "1" {
		log.Print("told to fail its start (WORKER_FAIL_START=1): exiting 1")
		os.Exit(1)
	}
	readyDelay := envDuration("WORKER_READY_DELAY")
	stopDelay := envDuration("WORKER_STOP_DELAY")

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	log.Printf("started pid=%d", os.Getpid())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if addr := os.Getenv("WORKER_LISTEN"); addr != "" {
		go serve(ctx, addr, readyDelay)
	}
	if url, queue := os.Getenv("WORKER_AMQP_URL"), os.Getenv("WORKER_QUEUE"); url != "" && queue != "" {
		go consume(ctx, url, queue, envDuration("WORKER_MSG_DELAY"))
	}

	for sig := range sigs {
		log.Printf("got signal %s", sig)
		if sig == syscall.SIGTERM || sig == syscall.SIGINT {
			if stopDelay > 0 {
				log.Printf("finishing tasks for %s", stopDelay)
				time.Sleep(stopDelay)
			}
			log.Print("stopped")
			return
		}
	}
}

func serve(ctx context.Context, addr string, delay time.Duration) {
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Printf("listen %s: %v", addr, err)
		return
	}
	log.Printf("answering on %s", addr)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, "ok")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	_ = srv.Serve(ln)
}

func envDuration(key string) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		log.Fatalf("%s=%q: %v", key, v, err)
	}
	return d
}

// consume works through a queue one message at a time, reconnecting when the
// broker goes away, until ctx ends.
func consume(ctx context.Context, url, queue string, delay time.Duration) {
	for ctx.Err() == nil {
		err := consumeOnce(ctx, url, queue, delay)
		log.Printf("consumer of %s: %v; reconnecting", queue, err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func consumeOnce(ctx context.Context, url, queue string, delay time.Duration) error {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return err
	}
	if err := ch.Qos(1, 0, false); err != nil {
		return err
	}
	msgs, err := ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	log.Printf("consuming %s", queue)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-msgs:
			if !ok {
				return fmt.Errorf("delivery channel closed")
			}
			time.Sleep(delay)
			if err := m.Ack(false); err != nil {
				return err
			}
		}
	}
}
