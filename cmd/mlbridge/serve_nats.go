package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/mlnats"
)

// natsFlags make serve a node on NATS (docs/DISTRIBUTED.md).
type natsFlags struct {
	url      string // a server URL, or "embedded"
	listen   string // where an embedded server listens
	dataDir  string // JetStream's directory for an embedded server
	name     string // the bridge's name on NATS (one subject token)
	user     string // user of an embedded server (password: $MLBRIDGE_NATS_PASSWORD)
	kv       string // JetStream KV bucket for the pool's definitions ("": in memory)
	creds    string
	nkeySeed string
	tlsCA    string
	tlsCert  string
	tlsKey   string
	// hostFuncs is a file naming the host functions the pool forwards to calling clients
	hostFuncs string
}

const (
	embeddedNATS    = "embedded"
	natsPasswordEnv = "MLBRIDGE_NATS_PASSWORD"
)

func (f *natsFlags) flags(fl *pflag.FlagSet) {
	fl.StringVar(&f.url, "nats", "", `serve the pool on NATS too: a server URL (nats://host:4222, credentials in the URL or below), or "embedded" to run a NATS server in this process`)
	fl.StringVar(&f.listen, "nats-listen", "127.0.0.1:4222", "where an embedded NATS server listens (port 0 picks one); beyond loopback --nats-user and $"+natsPasswordEnv+" are required")
	fl.StringVar(&f.user, "nats-user", "", "an embedded server requires this user, with the password in $"+natsPasswordEnv)
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for an embedded server's JetStream data (default: ~/.local/share/mlbridge)")
	fl.StringVar(&f.name, "nats-bridge", "", "the bridge's name on NATS, which clients Dial (default: the bridge class name, lowercased)")
	fl.StringVar(&f.kv, "nats-kv", "", "keep the pool's definitions in this JetStream KV bucket, shared by every node that names it (needs JetStream: --nats embedded has it)")
	fl.StringVar(&f.hostFuncs, "nats-host-funcs", "", "YAML/JSON file of host functions the pool's Python handlers may call, run by the client that made the call ({name: {description, schema}}; docs/DISTRIBUTED.md)")
	fl.StringVar(&f.creds, "nats-creds", "", "NATS credentials file (JWT + nkey seed)")
	fl.StringVar(&f.nkeySeed, "nats-nkey", "", "file holding an nkey seed to authenticate with")
	fl.StringVar(&f.tlsCA, "nats-tls-ca", "", "PEM CA to verify the NATS server with")
	fl.StringVar(&f.tlsCert, "nats-tls-cert", "", "PEM client certificate for NATS (with --nats-tls-key)")
	fl.StringVar(&f.tlsKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
}

// bridgeName is the NATS name of bridge "module:Class": the class, lowercased.
func (f *natsFlags) bridgeName(bridge string) string {
	if f.name != "" {
		return f.name
	}
	_, class, ok := strings.Cut(bridge, ":")
	if !ok {
		class = bridge
	}
	return strings.ToLower(strings.NewReplacer(".", "_", " ", "_").Replace(class))
}

// natsLink is serve's presence on NATS: its connection, the embedded server if it runs
// one, and once serving, its node.
type natsLink struct {
	nc   *nats.Conn
	emb  *mlnats.Embedded
	url  string // where clients connect, password redacted
	node *mlnats.Node
}

// connectNATS connects, starting an embedded server first if asked.
func connectNATS(f natsFlags, log *slog.Logger) (*natsLink, error) {
	l := &natsLink{}
	url := f.url
	if f.url == embeddedNATS {
		host, port, err := net.SplitHostPort(f.listen)
		if err != nil {
			return nil, fmt.Errorf("--nats-listen %q: %w", f.listen, err)
		}
		var portN int
		if _, err := fmt.Sscan(port, &portN); err != nil {
			return nil, fmt.Errorf("--nats-listen %q: bad port", f.listen)
		}
		password := os.Getenv(natsPasswordEnv)
		if (f.user == "") != (password == "") {
			return nil, fmt.Errorf("--nats-user and $%s go together", natsPasswordEnv)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			// Anyone who reaches the port could run every op: beyond loopback only with auth.
			if f.user == "" {
				return nil, fmt.Errorf("--nats-listen %q: an embedded NATS server listens beyond loopback only with --nats-user and $%s set (docs/DISTRIBUTED.md)", f.listen, natsPasswordEnv)
			}
			log.Warn("embedded NATS server beyond loopback without TLS: the password and every call cross the network in clear text; prefer a NATS cluster with TLS", "listen", f.listen)
		}
		dir := f.dataDir
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("no --data-dir and no home directory: %w", err)
			}
			dir = filepath.Join(home, ".local", "share", "mlbridge")
		}
		l.emb, err = mlnats.StartEmbedded(mlnats.EmbeddedConfig{Host: host, Port: portN, StoreDir: filepath.Join(dir, "jetstream"),
			Username: f.user, Password: password})
		if err != nil {
			return nil, err
		}
		url = l.emb.URL()
		if f.user != "" {
			url = strings.Replace(url, "://", "://"+f.user+":"+password+"@", 1)
		}
	}
	l.url = redact(url)
	opts, err := f.connectOptions(log)
	if err == nil {
		l.nc, err = nats.Connect(url, opts...)
		if err != nil {
			err = fmt.Errorf("connecting to NATS at %s: %w", l.url, err)
		}
	}
	if err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// kvStore opens the definitions bucket every node of the bridge shares.
func (l *natsLink) kvStore(ctx context.Context, bucket string) (*mlnats.KVStore, error) {
	js, err := jetstream.New(l.nc)
	if err != nil {
		return nil, err
	}
	return mlnats.OpenKVStore(ctx, js, bucket)
}

// serve makes p a node of bridge name; with defs (--nats-kv), the node watches the bucket
// so that definitions made through other nodes reach p's running workers.
func (l *natsLink) serve(name string, p mlbridge.Adapter, defs *mlnats.KVStore, log *slog.Logger) (err error) {
	l.node, err = mlnats.NewNode(l.nc, mlnats.NodeConfig{Adapters: map[string]mlbridge.Adapter{name: p}, Definitions: defs, Logger: log})
	return err
}

// stop drains the node (its calls need the pool, which stops after), then disconnects and
// stops the embedded server.
func (l *natsLink) stop(ctx context.Context) error {
	var err error
	if l.node != nil {
		err = l.node.Shutdown(ctx)
	}
	l.close()
	return err
}

func (l *natsLink) close() {
	if l.nc != nil {
		l.nc.Close()
	}
	if l.emb != nil {
		l.emb.Close()
	}
}

func (f *natsFlags) connectOptions(log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name("mlbridge serve"),
		nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close
				log.Warn("mlnats: disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("mlnats: reconnected to NATS", "url", redact(nc.ConnectedUrl())) }),
	}
	if f.creds != "" {
		opts = append(opts, nats.UserCredentials(f.creds))
	}
	if f.nkeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(f.nkeySeed)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if f.tlsCA != "" {
		opts = append(opts, nats.RootCAs(f.tlsCA))
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	if f.tlsCert != "" {
		opts = append(opts, nats.ClientCert(f.tlsCert, f.tlsKey))
	}
	return opts, nil
}

// redact hides a password in a NATS URL before it is printed or logged.
func redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	if user, host, ok := strings.Cut(rest, "@"); ok {
		name, _, _ := strings.Cut(user, ":")
		return scheme + "://" + name + ":***@" + host
	}
	return url
}
