// Package langchain is the typed LangChain client of the multi-framework API, over any
// mlbridge.Adapter running the LangChain bridge: chat models, chains (prompt | model | parser)
// invoked or streamed, and chat sessions whose history the host keeps.
//
// In Python, each op (invoke, stream, chat, and the generic execute) has an async and a sync
// implementation giving the same answers; the bridge option handler_modes picks them for every
// worker, e.g. in mlbridge.yaml `options: {handler_modes: {invoke: sync}}`. Nothing here changes
// with the choice.
package langchain

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// Bridge is the Python bridge class.
const Bridge = "mlbridge_worker.frameworks.langchain_bridge:LangChainBridge"

// Client runs LangChain chains and chats on an adapter.
type Client struct{ a mlbridge.Adapter }

// New returns a client for a, which must run the LangChain bridge.
func New(a mlbridge.Adapter) *Client { return &Client{a: a} }

// ModelConfig selects a chat model.
type ModelConfig struct {
	// Provider: "local" (the embedded SmolLM2-135M-Instruct on llama.cpp, offline),
	// "openai_compatible" (Model, BaseURL, APIKeyEnv) or "fake" (langchain-core's fake chat
	// model answering Responses in turn; tests; with Turns instead, a fake tool-calling
	// model playing the scripted turns in order, for tool_agent chains).
	Provider    string
	Model       string
	BaseURL     string
	APIKeyEnv   string // the *name* of the variable holding the key
	Temperature float64
	MaxTokens   int
	NumRetries  int // 0: the provider client's default; negative: none
	Responses   []string
	Turns       []FakeTurn
}

// FakeTurn is one scripted answer of a fake tool-calling model: text, tool calls, or both.
type FakeTurn struct {
	Content   string
	ToolCalls []ToolCall
}

// ToolCall is a tool call a fake model makes.
type ToolCall struct {
	Name string
	Args map[string]any
}

func (m ModelConfig) spec() map[string]any {
	s := map[string]any{"provider": m.Provider}
	if s["provider"] == "" {
		s["provider"] = "local"
	}
	set := func(k string, v any, ok bool) {
		if ok {
			s[k] = v
		}
	}
	set("model", m.Model, m.Model != "")
	set("base_url", m.BaseURL, m.BaseURL != "")
	set("api_key_env", m.APIKeyEnv, m.APIKeyEnv != "")
	set("temperature", m.Temperature, m.Temperature != 0)
	set("max_tokens", m.MaxTokens, m.MaxTokens != 0)
	set("num_retries", max(m.NumRetries, 0), m.NumRetries != 0)
	if len(m.Responses) > 0 {
		s["responses"] = m.Responses
	}
	if len(m.Turns) > 0 {
		turns := make([]any, len(m.Turns))
		for i, t := range m.Turns {
			calls := make([]any, len(t.ToolCalls))
			for j, c := range t.ToolCalls {
				calls[j] = map[string]any{"name": c.Name, "args": c.Args}
			}
			turns[i] = map[string]any{"content": t.Content, "tool_calls": calls}
		}
		s["turns"] = turns
	}
	return s
}

// CreateModel defines chat model id. It redefines a model of that id; a chain's id is
// mlbridge.ErrInvalidArgument.
func (c *Client) CreateModel(ctx context.Context, id string, cfg ModelConfig) error {
	if err := c.sameKind(ctx, id, "model"); err != nil {
		return err
	}
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "langchain.CreateModel")
	_, err := c.a.Create(ctx, store.Definition{ID: id, Kind: "model", Spec: cfg.spec()})
	end(err)
	return err
}

// Message is one turn of a chat or one prompt message: role system, human/user, ai/assistant
// (or placeholder in a chain prompt).
type Message struct {
	Role    string `msgpack:"role"`
	Content string `msgpack:"content"`
}

// ChainConfig is a chain: a prompt (Messages, or a single human Template) with {variables},
// the chat model it runs on, and the output parser ("str", default, or "json").
//
// Kind "tool_agent" makes it a tool-calling agent instead: the prompt's messages start a loop
// in which the model (one that supports LangChain's bind_tools) may call Tools, the names of Go
// functions registered on the pool (mlbridge.Func in Config.HostFuncs), bound as LangChain
// StructuredTools with the Go side's name, description and argument schema; each tool call runs
// the Go function and its result goes back to the model, for at most MaxIters model calls
// (0: 5). A Go function's error is shown to the model as the tool's result ("error:
// <category>: <message>") and recorded in the trajectory. Invoke returns an AgentResult
// (decode with mlbridge.Decode[langchain.AgentResult]); a tool_agent does not stream and takes
// no Parser. A tool name that no host function has fails CreateChain with ErrInvalidArgument
// (the worker building the definition checks it against the functions it was given).
type ChainConfig struct {
	Kind     string // "" or "chain" (default), or "tool_agent"
	Model    string
	Messages []Message
	Template string
	Parser   string
	Tools    []string // tool_agent: host function names
	MaxIters int      // tool_agent: at most this many model calls (0: 5)
}

// AgentResult is what a tool_agent's Invoke returns.
type AgentResult struct {
	Answer string `msgpack:"answer"`
	// Finished is false when MaxIters ran out while the model still called tools; Answer is
	// then the last model message's text (often empty).
	Finished   bool       `msgpack:"finished"`
	Trajectory []ToolStep `msgpack:"trajectory"`
}

// ToolStep is one tool call of an agent run: its result, or the error the model was shown.
type ToolStep struct {
	Tool   string         `msgpack:"tool"`
	Args   map[string]any `msgpack:"args"`
	Result any            `msgpack:"result"`
	Error  string         `msgpack:"error"`
}

func (cfg ChainConfig) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: chain: "+format, append([]any{mlbridge.ErrInvalidArgument}, args...)...)
	}
	switch cfg.Kind {
	case "", "chain":
		if len(cfg.Tools) > 0 || cfg.MaxIters != 0 {
			return bad("Tools and MaxIters are for Kind \"tool_agent\"")
		}
	case "tool_agent":
		if len(cfg.Tools) == 0 {
			return bad("a tool_agent needs Tools: names of Go functions registered with mlbridge.Func")
		}
		if slices.Contains(cfg.Tools, "") {
			return bad("empty tool name in %q", cfg.Tools)
		}
		if cfg.MaxIters < 0 {
			return bad("MaxIters %d: want at least 1 (0: 5)", cfg.MaxIters)
		}
		if cfg.Parser != "" {
			return bad("a tool_agent takes no Parser")
		}
	default:
		return bad("unknown Kind %q (have: chain, tool_agent)", cfg.Kind)
	}
	return nil
}

// CreateChain defines chain id; its model is built first on any worker that runs it. It
// redefines a chain of that id; a model's id is mlbridge.ErrInvalidArgument.
func (c *Client) CreateChain(ctx context.Context, id string, cfg ChainConfig) error {
	if err := cfg.check(); err != nil {
		return err
	}
	if err := c.sameKind(ctx, id, "chain"); err != nil {
		return err
	}
	spec := map[string]any{"model": cfg.Model}
	if cfg.Kind == "tool_agent" {
		spec["kind"] = cfg.Kind
		spec["tools"] = append([]string(nil), cfg.Tools...)
		if cfg.MaxIters > 0 {
			spec["max_iters"] = cfg.MaxIters
		}
	}
	if len(cfg.Messages) > 0 {
		msgs := make([]any, len(cfg.Messages))
		for i, m := range cfg.Messages {
			msgs[i] = []any{m.Role, m.Content}
		}
		spec["messages"] = msgs
	}
	if cfg.Template != "" {
		spec["template"] = cfg.Template
	}
	if cfg.Parser != "" {
		spec["parser"] = cfg.Parser
	}
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "langchain.CreateChain")
	_, err := c.a.Create(ctx, store.Definition{ID: id, Kind: "chain", Spec: spec, Requires: []string{cfg.Model}})
	end(err)
	return err
}

// Invoke runs chain id on inputs; the result is a string (parser "str") or JSON-like values.
func (c *Client) Invoke(ctx context.Context, id string, inputs map[string]any) (mlbridge.Result, error) {
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "langchain.Invoke")
	r, err := c.a.Call(ctx, "invoke", map[string]any{"chain_id": id, "inputs": inputs}, mlbridge.Uses(id))
	end(err)
	return r, err
}

// Stream runs chain id on inputs and yields its text as the model produces it; breaking out
// of the loop stops the generation in Python.
func (c *Client) Stream(ctx context.Context, id string, inputs map[string]any) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		ctx, end := mlbridge.TraceOperation(ctx, c.a, "langchain.Stream")
		var final error
		defer func() { end(final) }()
		for r, err := range c.a.Stream(ctx, "stream", map[string]any{"chain_id": id, "inputs": inputs}, mlbridge.Uses(id)) {
			var s string
			if err == nil {
				err = r.Decode(&s)
			}
			if !yield(s, err) || err != nil {
				final = err
				return
			}
		}
	}
}

// Session is a chat with model whose history lives on the host: every turn sends the whole
// history, so any worker can answer and a dead worker loses nothing.
type Session struct {
	c       *Client
	model   string
	History []Message
}

// Chat starts a session on model id, with an optional system prompt.
func (c *Client) Chat(model, system string) *Session {
	s := &Session{c: c, model: model}
	if system != "" {
		s.History = append(s.History, Message{Role: "system", Content: system})
	}
	return s
}

// Send adds a user turn, asks the model, records its answer and returns it. A failed turn
// leaves the history as it was.
func (s *Session) Send(ctx context.Context, text string) (string, error) {
	msgs := append(s.History[:len(s.History):len(s.History)], Message{Role: "user", Content: text})
	reply, err := mlbridge.Decode[Message](s.c.a.Call(ctx, "chat", map[string]any{"model_id": s.model, "messages": msgs}, mlbridge.Uses(s.model)))
	if err != nil {
		return "", err
	}
	s.History = append(msgs, reply)
	return reply.Content, nil
}

// sameKind refuses an id that a definition of another kind holds: models and chains share one
// id space, and Create would replace the other definition (a chain's model, or a chain).
func (c *Client) sameKind(ctx context.Context, id, kind string) error {
	switch d, err := c.a.Get(ctx, id); {
	case err == nil && d.Kind != kind:
		return fmt.Errorf("%w: id %q is a %s, not a %s", mlbridge.ErrInvalidArgument, id, d.Kind, kind)
	case err != nil && !errors.Is(err, mlbridge.ErrNotFound):
		return err
	}
	return nil
}
