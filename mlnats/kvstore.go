package mlnats

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// KVStore is a store.Store on a JetStream key-value bucket: every node of a deployment
// reads and writes the same definitions, and Watch tells each one what changed.
//
// A definition's Version is the revision of its key's latest write: it grows on every Put
// (by more than one when other keys were written in between) and keeps growing across a
// Delete and a new Put of the same ID, so a worker never mistakes a new definition for one
// it built before.
type KVStore struct {
	kv jetstream.KeyValue
	nc *nats.Conn // the bucket's connection: Watch resumes when it reconnects
}

var _ store.Store = (*KVStore)(nil)

// OpenKVStore opens bucket (creating it if needed, file-backed, keeping 5 revisions per key).
func OpenKVStore(ctx context.Context, js jetstream.JetStream, bucket string) (*KVStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Description: "mlbridge definitions", History: 5, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("mlnats: KV bucket %q: %w", bucket, err)
	}
	return &KVStore{kv: kv, nc: js.Conn()}, nil
}

// kvErr is err, when it says the bucket or its server cannot be reached (the bucket was
// deleted, JetStream is off or recovering, the connection is down or closed), also as
// mlbridge.ErrUnavailable: a caller can tell "try later" from a bad definition.
func kvErr(err error) error {
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrStreamNotFound),
		errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		// Watches (and so List) run on nats.go's legacy JetStream API, with errors of its own.
		errors.Is(err, nats.ErrStreamNotFound), errors.Is(err, nats.ErrNoStreamResponse),
		errors.Is(err, nats.ErrBucketNotFound), errors.Is(err, nats.ErrJetStreamNotEnabled):
		return fmt.Errorf("%w: %w", mlbridge.ErrUnavailable, err)
	}
	return err
}

// key is the bucket key of id: base64url, since ids may hold characters keys may not.
func key(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// Put implements store.Store. IfAbsent is a kv.Create and IfVersion a kv.Update at that
// revision: the server checks the key's last revision in the same step as the write, so of
// writers racing on one key exactly one wins, whichever node they write through.
func (s *KVStore) Put(ctx context.Context, d store.Definition) (store.Definition, error) {
	if d.ID == "" {
		return store.Definition{}, errors.New("store: definition without an ID")
	}
	if d.IfAbsent && d.IfVersion != 0 {
		return store.Definition{}, fmt.Errorf("%w: %q: IfAbsent and IfVersion together", store.ErrConflict, d.ID)
	}
	ifAbsent, ifVersion := d.IfAbsent, d.IfVersion
	d.IfAbsent, d.IfVersion, d.Version = false, 0, 0
	d.UpdatedAt = time.Now().UTC()
	val, err := msgpack.Marshal(&d)
	if err != nil {
		return store.Definition{}, fmt.Errorf("store: encoding %q: %w", d.ID, err)
	}
	var rev uint64
	switch {
	case ifAbsent:
		rev, err = s.kv.Create(ctx, key(d.ID), val)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return store.Definition{}, fmt.Errorf("%w: %q", store.ErrExists, d.ID)
		}
	case ifVersion != 0:
		// The server refuses it (wrong last sequence) when the key's last revision is not
		// ifVersion: replaced, deleted (a delete is a revision too) or never written.
		rev, err = s.kv.Update(ctx, key(d.ID), val, ifVersion)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return store.Definition{}, fmt.Errorf("%w: %q: expected version %d", store.ErrConflict, d.ID, ifVersion)
		}
	default:
		rev, err = s.kv.Put(ctx, key(d.ID), val)
	}
	if err != nil {
		return store.Definition{}, fmt.Errorf("store: KV put %q: %w", d.ID, kvErr(err))
	}
	d.Version = rev
	return d, nil
}

// Get implements store.Store.
func (s *KVStore) Get(ctx context.Context, id string) (store.Definition, error) {
	e, err := s.kv.Get(ctx, key(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return store.Definition{}, fmt.Errorf("%w: %q", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Definition{}, fmt.Errorf("store: KV get %q: %w", id, kvErr(err))
	}
	return decodeEntry(e)
}

func decodeEntry(e jetstream.KeyValueEntry) (store.Definition, error) {
	var d store.Definition
	if err := msgpack.Unmarshal(e.Value(), &d); err != nil {
		return d, fmt.Errorf("store: KV entry %q: %w", e.Key(), err)
	}
	d.Version = e.Revision()
	return d, nil
}

// Delete implements store.Store: ErrNotFound when id is not stored.
func (s *KVStore) Delete(ctx context.Context, id string) error {
	e, err := s.kv.Get(ctx, key(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return fmt.Errorf("%w: %q", store.ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("store: KV get %q: %w", id, kvErr(err))
	}
	// Only the revision we saw: a Put in between wins over this Delete.
	err = s.kv.Delete(ctx, key(id), jetstream.LastRevision(e.Revision()))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("%w: %q: replaced while being deleted", store.ErrConflict, id)
	}
	if err != nil {
		return fmt.Errorf("store: KV delete %q: %w", id, kvErr(err))
	}
	return nil
}

// List implements store.Store, sorted by ID.
func (s *KVStore) List(ctx context.Context) ([]store.Definition, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("store: KV list: %w", kvErr(err))
	}
	defer w.Stop()
	var out []store.Definition
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // the initial values are all in
				slices.SortFunc(out, func(a, b store.Definition) int { return strings.Compare(a.ID, b.ID) })
				return out, nil
			}
			d, err := decodeEntry(e)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close implements store.Store; the bucket stays.
func (s *KVStore) Close() error { return nil }
