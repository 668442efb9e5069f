package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
	"github.com/mlbridge/mlbridge/prommetrics"
	"github.com/mlbridge/mlbridge/statuspage"
	"github.com/mlbridge/mlbridge/store"
)

const defaultAdminAddr = "127.0.0.1:7420"

// serveFlags are serve's own flags, beside the global ones.
type serveFlags struct {
	size         int
	preload      bool
	addr         string
	tokenFile    string
	tlsCert      string
	tlsKey       string
	allowedHosts []string
	nats         natsFlags
}

func newServeCmd(g *globalFlags) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a pool of workers and its local HTTP endpoint (status, health, calls)",
		Long: `Starts a pool and serves on a local address:
  GET  /                 live status page: workers, queue, latency, errors, migration (in a browser)
  GET  /v1/status        pool statistics (what 'mlbridge status' prints)
  GET  /v1/node          the node's status (mlbridge.NodeHandler; read by 'mlbridge migrate status --node')
  GET  /v1/healthz       200 when every worker is ready, 503 otherwise (never needs the token)
  GET  /metrics          Prometheus metrics: call durations, queue, workers (docs/OBSERVABILITY.md)
  POST /v1/call/{op}     JSON object in (Content-Type: application/json), JSON result out

Access: with a token (--token-file, else $MLBRIDGE_TOKEN) every endpoint but /v1/healthz needs
"Authorization: Bearer <token>" (the status page asks for it once, in a login form, and keeps a
session cookie). Listening beyond loopback requires a token. Requests must name
this node in Host (a loopback name, the --addr host or an --allowed-host), and a browser's Origin
must be this node: no web page can run ops on it. --tls-cert/--tls-key serve HTTPS.
With --nats URL (or --nats embedded: a NATS server in this process, on 127.0.0.1:4222 with
JetStream under --data-dir; beyond loopback only with --nats-user and $MLBRIDGE_NATS_PASSWORD)
the pool is also a node on NATS: clients anywhere reach it with
mlnats.Dial, calls are balanced over every node of the bridge (docs/DISTRIBUTED.md).
Stops gracefully on SIGINT/SIGTERM: in-flight calls finish, then the workers stop.`,
		Example: `  mlbridge serve
  MLBRIDGE_TOKEN=$(openssl rand -hex 32) mlbridge serve --addr 0.0.0.0:7420 --tls-cert node.pem --tls-key node.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd, g, f) },
	}
	fl := cmd.Flags()
	intFlagMin(fl, &f.size, "workers", 2, 1, "worker processes")
	fl.BoolVar(&f.preload, "preload", false, "fork workers from one preloaded interpreter (PoolConfig.Preload)")
	fl.StringVar(&f.addr, "addr", defaultAdminAddr, "listen address, host:port (or http(s)://host:port); beyond loopback a token is required")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token clients must send (default: $"+tokenEnv+")")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate: serve HTTPS (with --tls-key)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fl.StringSliceVar(&f.allowedHosts, "allowed-host", nil, "another name clients reach this node by (Host header check)")
	f.nats.flags(fl)
	return cmd
}

func serve(cmd *cobra.Command, g *globalFlags, f serveFlags) error {
	ctx := cmd.Context()
	log := g.logger()
	token, err := loadToken(f.tokenFile)
	if err != nil {
		return err
	}
	if token != "" && len(token) < minTokenLen {
		return fmt.Errorf("the token is shorter than %d characters: make one with `openssl rand -hex 32`", minTokenLen)
	}
	if f.tokenFile != "" {
		warnIfShared(log, f.tokenFile)
	}
	tlsConfig, err := loadTLS(f.tlsCert, f.tlsKey)
	if err != nil {
		return err
	}
	addr, err := listenAddr(f.addr, tlsConfig != nil)
	if err != nil {
		return err
	}
	// Listen before starting workers: a bad or unsafe address fails at once.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if !isLoopback(ln.Addr()) {
		if token == "" {
			return fmt.Errorf("serve: %s is not a loopback address, and without a token anyone who reaches it could run ops: "+
				"set $%s or --token-file (or listen on 127.0.0.1)", ln.Addr(), tokenEnv)
		}
		if tlsConfig == nil {
			log.Warn("serving beyond loopback without TLS: the token crosses the network in clear text (use --tls-cert/--tls-key)", "addr", ln.Addr().String())
		}
	}
	acc := newAccess(token, nodeHosts(addr, f.allowedHosts), tlsConfig != nil)
	metrics, err := prommetrics.New()
	if err != nil {
		return err
	}
	// On NATS, connect before the pool starts: its definitions may live in a KV bucket.
	var link *natsLink
	var defs store.Store
	var kv *mlnats.KVStore
	if f.nats.url != "" {
		if link, err = connectNATS(f.nats, log); err != nil {
			return err
		}
		defer link.close()
		if f.nats.kv != "" {
			if kv, err = link.kvStore(ctx, f.nats.kv); err != nil {
				return err
			}
			defs = kv
		}
	} else if f.nats.kv != "" {
		return errors.New("--nats-kv needs --nats")
	}
	hostFuncs, err := f.nats.forwardedFuncs()
	if err != nil {
		return err
	}
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: g.bridge, Python: g.python, Logger: log, HostFuncs: hostFuncs}, Size: f.size, Preload: f.preload,
		MeterProvider: metrics.MeterProvider(), Store: defs,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	// The page takes the API's token: one secret per node (statuspage: why a cookie).
	page := statuspage.New(statuspage.Options{Token: token, Logger: log}, mlbridge.Named(g.bridge, p))
	srv := &http.Server{Handler: serveHandler(g.bridge, p, metrics, acc, page), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(page.Close) // open status pages would hold Shutdown for its whole timeout
	fmt.Fprintf(cmd.OutOrStdout(), "mlbridge: %d workers of %s ready; serving on %s://%s\n", f.size, g.bridge, acc.scheme, ln.Addr())
	stopNATS := func(context.Context) error { return nil }
	if link != nil {
		if err := link.serve(f.nats.bridgeName(g.bridge), p, kv, log); err != nil {
			return err
		}
		stopNATS = link.stop
		fmt.Fprintf(cmd.OutOrStdout(), "mlbridge: serving bridge %q on NATS at %s\n", f.nats.bridgeName(g.bridge), link.url)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// The node drains first: its in-flight calls need the pool, and new ones go elsewhere.
	natsErr := withTimeout(30*time.Second, stopNATS)
	return errors.Join(natsErr, withTimeout(30*time.Second, srv.Shutdown), withTimeout(30*time.Second, p.Shutdown))
}

// withTimeout runs a shutdown step with its own deadline: an HTTP client that holds the
// server's whole timeout must not leave the pool no time to finish its calls.
func withTimeout(d time.Duration, step func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return step(ctx)
}

// listenAddr is where serve listens: --addr as host:port, or as the URL clients will use
// (http://host:port, or https://host:port with --tls-cert), read as the clients read it.
func listenAddr(addr string, tls bool) (string, error) {
	if !strings.Contains(addr, "://") {
		return addr, nil // host:port; ":7420" is every interface
	}
	u, err := parseNode("addr", addr)
	if err != nil {
		return "", err
	}
	switch {
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		return "", fmt.Errorf("--addr %q: serve listens on host:port (no path, query or user)", addr)
	case u.Port() == "":
		return "", fmt.Errorf("--addr %q: give a port", addr)
	case u.Scheme == "https" && !tls:
		return "", fmt.Errorf("--addr %q: serving https needs --tls-cert and --tls-key", addr)
	case u.Scheme == "http" && tls:
		return "", fmt.Errorf("--addr %q: with --tls-cert serve speaks https", addr)
	}
	return u.Host, nil
}

// loadTLS returns nil without a certificate (plain HTTP).
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// serveHandler is serve's whole HTTP surface: /v1/healthz as it is, the API behind acc
// (/metrics too: op names and load are not for anyone who reaches the port), and at / the
// status page (nil: none), behind acc's Host and Origin rules and its own token check.
func serveHandler(name string, p *mlbridge.Pool, metrics http.Handler, acc *access, page http.Handler) http.Handler {
	mux := http.NewServeMux()
	// Open on purpose: load balancers and orchestrators probe it without credentials (and
	// with whatever Host they use), and it tells nothing but ready or not.
	mux.HandleFunc("GET /v1/healthz", func(w http.ResponseWriter, r *http.Request) {
		if p.Healthy() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
	})
	api := acc.wrap(adminMux(name, p, metrics))
	if page == nil {
		mux.Handle("/", api)
		return mux
	}
	mux.Handle("/v1/", api)
	mux.Handle("/metrics", api)
	mux.Handle("/", acc.guard(page))
	return mux
}

func adminMux(name string, p *mlbridge.Pool, metrics http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /v1/node", mlbridge.NodeHandler(mlbridge.Named(name, p)))
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Stats())
	})
	mux.HandleFunc("POST /v1/call/{op}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
			return
		}
		var args map[string]any
		if s := strings.TrimSpace(string(body)); s != "" {
			if args, err = parseArgs(s); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
		}
		res, err := p.Call(r.Context(), r.PathValue("op"), args)
		if err != nil {
			writeJSON(w, httpStatus(err), errorBody(err))
			return
		}
		v, err := res.Value()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error(), "category": "serialization"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"result": jsonValue(v, false)})
	})
	return mux
}

func httpStatus(err error) int {
	switch {
	case errors.Is(err, mlbridge.ErrInvalidArgument), errors.Is(err, mlbridge.ErrUnknownOp):
		return http.StatusBadRequest
	case errors.Is(err, mlbridge.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, mlbridge.ErrOverloaded), errors.Is(err, mlbridge.ErrRateLimit):
		return http.StatusTooManyRequests
	case errors.Is(err, mlbridge.ErrTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, mlbridge.ErrClosed), errors.Is(err, mlbridge.ErrCrashLoop), errors.Is(err, mlbridge.ErrWorkerExited):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func errorBody(err error) map[string]any {
	body := map[string]any{"error": err.Error()}
	var re *mlbridge.RemoteError
	if errors.As(err, &re) {
		body["category"], body["type"] = re.Category, re.Type
	}
	return body
}

// writeJSON encodes v before the status goes out: a value JSON cannot carry (a result holding
// NaN or ±Inf) is a 500 saying so, not a 200 with an empty body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(map[string]string{"error": "the answer cannot be written as JSON: " + err.Error(),
			"category": "serialization"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
