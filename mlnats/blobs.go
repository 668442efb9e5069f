package mlnats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// A value over the server's max payload (arguments, a result, a stream chunk) crosses
// through a JetStream Object Store: the sender puts it there and sends a message naming it
// (header Mlb-Blob: "<bucket>/<object>", no body); the receiver reads it from there. The
// Object Store already chunks, checksums and flow-controls a large value, and keeps it on
// the server rather than in either side's receive buffers; hand-made chunking over core
// NATS would rebuild all that, with reassembly memory on the receiver. Without JetStream a
// value over the limit fails with ErrPayloadTooLarge (docs/DISTRIBUTED.md).
//
// Values travel on a connection of their own, opened on first use with the main one's
// options: on the main one, a 100 MB transfer would hold back every heartbeat and small
// reply queued behind it in the same TCP stream (measured: a node's heartbeats stalled for
// over a second behind its upload of a 100 MB result under the race detector, and the
// client took the node for dead).
//
// Who deletes: the client owns its arguments (it deletes them when the call ends, after any
// retries, whatever the outcome); the reader deletes a result or chunk once read. What a
// crash leaves behind expires with the bucket's TTL.

// BlobConfig says where values over the max payload go.
type BlobConfig struct {
	// Bucket is the Object Store bucket (default "mlbridge-blobs"), created on first use.
	// Clients and nodes need not agree on it: a message names its bucket.
	Bucket string
	// TTL is how long a stored value lives at most (default 15 minutes): the cleanup of
	// values a crashed client or node left behind. It applies when this side creates the
	// bucket; an existing bucket keeps its own. A call's arguments must be read within it.
	TTL time.Duration
	// Threshold is the size above which a value goes to the bucket (default: the server's
	// max payload less 8 KiB for headers).
	Threshold int
}

const (
	hBlob             = "Mlb-Blob"
	defaultBlobBucket = "mlbridge-blobs"
	defaultBlobTTL    = 15 * time.Minute
	blobHeadroom      = 8 << 10
	// blobTimeout bounds a transfer that has no caller's deadline (a node's result).
	blobTimeout = 5 * time.Minute
)

// ErrPayloadTooLarge: a value is over the NATS server's max payload and cannot go through
// an Object Store (the server has no JetStream, or the bucket cannot be opened). Arguments
// failing so also match mlbridge.ErrInvalidArgument; results and chunks ErrSerialization.
var ErrPayloadTooLarge = errors.New("mlnats: payload over the NATS max payload and no JetStream object store")

// ErrBlobLost: a message names a stored value that is not there (it expired past the
// bucket's TTL, or was deleted) or could not be read.
var ErrBlobLost = errors.New("mlnats: a stored payload is gone or unreadable")

type blobs struct {
	nc  *nats.Conn
	cfg BlobConfig

	mu     sync.Mutex
	own    *nats.Conn // the connection values travel on; nil until first used
	closed bool
	js     jetstream.JetStream
	stores map[string]jetstream.ObjectStore
}

func newBlobs(nc *nats.Conn, cfg BlobConfig) *blobs {
	if cfg.Bucket == "" {
		cfg.Bucket = defaultBlobBucket
	}
	if cfg.TTL <= 0 {
		cfg.TTL = defaultBlobTTL
	}
	return &blobs{nc: nc, cfg: cfg, stores: map[string]jetstream.ObjectStore{}}
}

func (b *blobs) threshold() int {
	if b.cfg.Threshold > 0 {
		return b.cfg.Threshold
	}
	return max(int(b.nc.MaxPayload())-blobHeadroom, 1)
}

// store opens bucket, creating it (with the TTL) when it is missing. Failures are not
// kept: JetStream may be enabled later.
func (b *blobs) store(ctx context.Context, bucket string, create bool) (jetstream.ObjectStore, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.stores[bucket]; s != nil {
		return s, nil
	}
	if b.closed {
		return nil, nats.ErrConnectionClosed
	}
	if b.js == nil {
		opts := b.nc.Opts
		opts.Name += " (blobs)"
		// The same server and credentials, but not the owner's event handlers: closing this
		// connection must not look like the owner's connection closing.
		opts.ClosedCB, opts.DisconnectedCB, opts.DisconnectedErrCB, opts.ConnectedCB = nil, nil, nil, nil
		opts.ReconnectedCB, opts.DiscoveredServersCB, opts.AsyncErrorCB, opts.ReconnectErrCB = nil, nil, nil, nil
		opts.LameDuckModeHandler = nil
		own, err := opts.Connect()
		if err != nil {
			return nil, fmt.Errorf("a connection for values: %w", err)
		}
		js, err := jetstream.New(own)
		if err != nil {
			own.Close()
			return nil, err
		}
		b.own, b.js = own, js
	}
	s, err := b.js.ObjectStore(ctx, bucket)
	if create && errors.Is(err, jetstream.ErrBucketNotFound) {
		s, err = b.js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: bucket, Description: "mlbridge values over the NATS max payload", TTL: b.cfg.TTL,
		})
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = b.js.ObjectStore(ctx, bucket) // another side created it first
		}
	}
	if err != nil {
		return nil, err
	}
	b.stores[bucket] = s
	return s, nil
}

// pack returns what to send for data: data itself when it fits; otherwise an empty body,
// with h naming the stored copy, and that copy's reference (to drop when done). class is
// the error a value that cannot be sent also matches.
func (b *blobs) pack(ctx context.Context, h nats.Header, data []byte, what string, class error) ([]byte, string, error) {
	if len(data) <= b.threshold() {
		return data, "", nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, blobTimeout)
		defer cancel()
	}
	s, err := b.store(ctx, b.cfg.Bucket, true)
	if ctx.Err() != nil { // the caller gave up: that, not the store, is the error
		return nil, "", ctxErr("storing "+what, ctx.Err())
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w: %s of %d bytes (max payload %d): object store %q: %w",
			ErrPayloadTooLarge, class, what, len(data), b.nc.MaxPayload(), b.cfg.Bucket, err)
	}
	name := nuid.Next()
	ref := b.cfg.Bucket + "/" + name
	if _, err := s.PutBytes(ctx, name, data); err != nil {
		// The store purges a half-written object's chunks, but a put whose ctx ended while
		// its last publishes were in flight can still complete on the server: delete it.
		go b.drop(ref)
		if ctx.Err() != nil {
			return nil, "", ctxErr("storing "+what, ctx.Err())
		}
		return nil, "", fmt.Errorf("%w: %w: storing %s of %d bytes in %q: %w", ErrPayloadTooLarge, class, what, len(data), b.cfg.Bucket, err)
	}
	h[hBlob] = []string{ref}
	return nil, ref, nil
}

// unpack returns a message's value: its body, or the stored value it names (and that
// reference, for the reader who must drop it).
func (b *blobs) unpack(ctx context.Context, m *nats.Msg) ([]byte, string, error) {
	ref := m.Header.Get(hBlob)
	if ref == "" {
		return m.Data, "", nil
	}
	bucket, name, ok := strings.Cut(ref, "/")
	if !ok {
		return nil, "", fmt.Errorf("%w: bad reference %q", ErrBlobLost, ref)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, blobTimeout)
		defer cancel()
	}
	s, err := b.store(ctx, bucket, false)
	var data []byte
	if err == nil {
		data, err = s.GetBytes(ctx, name)
	}
	if ctx.Err() != nil {
		return nil, ref, ctxErr("reading stored value "+ref, ctx.Err())
	}
	if err != nil {
		return nil, ref, fmt.Errorf("%w: %s: %w", ErrBlobLost, ref, err)
	}
	return data, ref, nil
}

// drop deletes a stored value (one round trip to the server); one already gone is fine,
// and one that cannot be deleted now expires with the bucket's TTL.
func (b *blobs) drop(ref string) {
	if ref == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bucket, name, _ := strings.Cut(ref, "/")
	if s, err := b.store(ctx, bucket, false); err == nil {
		_ = s.Delete(ctx, name)
	}
}

// close closes the values' connection, if one was opened.
func (b *blobs) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.own != nil {
		b.own.Close()
	}
	b.own, b.js, b.stores, b.closed = nil, nil, map[string]jetstream.ObjectStore{}, true
}
