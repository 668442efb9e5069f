// Package mlnats runs mlbridge beyond one machine, over NATS.
//
// A Node serves local adapters (a Registry's bridges, or named Pools) as NATS micro
// services: one service per bridge, with endpoints for calls, submitted calls, streams and
// definitions, load-balanced across every node of the bridge by the service's queue group.
// Dial returns an mlbridge.Adapter for a bridge served by any number of nodes, so the typed
// clients (dspy, langchain, sklearn) run over it unchanged.
//
// Calls keep their local semantics: a ctx deadline travels as a relative timeout, a cancel
// reaches the node (and the Python task), errors keep their types (sentinels, *RemoteError,
// *ExitError), a call whose node stops answering is retried on another node when it is
// Idempotent, and a bridge that no node serves fails at once with mlbridge.ErrUnavailable.
// Streams are flow-controlled by a credit window.
//
// A Python handler on a node can call Go functions of the client that made the call: the
// client serves them (Options.HostFuncs, or RegistryOptions.HostFuncs for a Registry's
// remote: entries through RegistryDialer), the node's pool declares them with Forward or
// ForwardFunc. Values over the server's max payload — a call's arguments, results and
// stream chunks, and a host call's arguments and results — cross through a JetStream Object
// Store (BlobConfig) and are deleted once used; without JetStream they fail with
// ErrPayloadTooLarge. See docs/DISTRIBUTED.md.
package mlnats
