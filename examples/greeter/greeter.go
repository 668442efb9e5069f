// Package greeter is the typed Go client of the "greeter" bridge (scaffolded by
// `mlbridge new-bridge greeter`): a thin layer over any mlbridge.Adapter running it.
package greeter

import (
	"context"
	"iter"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// Bridge is the Python bridge class; its module is python/greeter_bridge.py next to this
// file, which must be on the workers' PYTHONPATH.
const Bridge = "greeter_bridge:GreeterBridge"

// Client calls the bridge through an adapter (a Registry entry or a Pool).
type Client struct{ a mlbridge.Adapter }

// New returns a client for a.
func New(a mlbridge.Adapter) *Client { return &Client{a: a} }

// Prediction is what predict returns.
type Prediction struct {
	Label  string `msgpack:"label"`
	Length int    `msgpack:"length"`
}

// Predict runs the sync handler predict.
func (c *Client) Predict(ctx context.Context, text string) (Prediction, error) {
	return mlbridge.Decode[Prediction](c.a.Call(ctx, "predict", map[string]any{"text": text}))
}

// Generate runs the async handler generate.
func (c *Client) Generate(ctx context.Context, prompt string) (string, error) {
	return mlbridge.Decode[string](c.a.Call(ctx, "generate", map[string]any{"prompt": prompt}))
}

// StreamWords streams the words of text; breaking out of the loop cancels the work in Python.
func (c *Client) StreamWords(ctx context.Context, text string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for r, err := range c.a.Stream(ctx, "stream_words", map[string]any{"text": text}) {
			var w string
			if err == nil {
				err = r.Decode(&w)
			}
			if !yield(w, err) || err != nil {
				return
			}
		}
	}
}

// CreateModel stores a model definition (any worker can build it) and returns its id.
func (c *Client) CreateModel(ctx context.Context, id, prefix string) (string, error) {
	d, err := c.a.Create(ctx, store.Definition{ID: id, Kind: "model", Spec: map[string]any{"prefix": prefix}})
	return d.ID, err
}

// RunModel executes a model on text.
func (c *Client) RunModel(ctx context.Context, id, text string) (Prediction, error) {
	return mlbridge.Decode[Prediction](c.a.Execute(ctx, id, map[string]any{"text": text}))
}
