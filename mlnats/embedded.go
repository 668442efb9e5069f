package mlnats

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig describes a NATS server run inside this process: for one machine, tests,
// or the first node of a deployment that has no NATS yet.
type EmbeddedConfig struct {
	// Host and Port to listen on. Host defaults to 127.0.0.1: nothing beyond this machine
	// reaches an embedded server unless asked to (then set auth: docs/DISTRIBUTED.md).
	// Port 0 picks a free port.
	Host string
	Port int
	// StoreDir holds JetStream's data (definitions in KV); empty: JetStream is off.
	StoreDir string
	// Name of the server (default: chosen by the server).
	Name string
	// Username and Password, if set, are required of every client.
	Username, Password string
}

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server in this process and waits until it takes connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       port,
		NoSigs:     true, // the host process owns its signals
		NoLog:      true,
		HTTPPort:   0, // no monitoring endpoint
		Username:   cfg.Username,
		Password:   cfg.Password,
	}
	if cfg.StoreDir != "" {
		opts.JetStream = true
		opts.StoreDir = cfg.StoreDir
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("mlnats: embedded NATS server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("mlnats: embedded NATS server did not become ready in 10s")
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL (nats://host:port).
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Addr is the host:port the server listens on.
func (e *Embedded) Addr() string {
	a := e.srv.Addr()
	if ta, ok := a.(*net.TCPAddr); ok {
		return net.JoinHostPort(ta.IP.String(), strconv.Itoa(ta.Port))
	}
	return a.String()
}

// Server is the nats-server itself, for an in-process connection (nats.InProcessServer).
func (e *Embedded) Server() *server.Server { return e.srv }

// Close stops the server and waits until it has.
func (e *Embedded) Close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
