package dspy

import (
	"context"
	"iter"

	"github.com/mlbridge/mlbridge"
)

// StreamChunk is one piece of a streamed program run: either Text of output Field as the LM
// writes it, or, last and once, the Prediction.
type StreamChunk struct {
	// Field names the output field Text belongs to (for ChainOfThought, "reasoning" comes
	// first). A field's pieces, joined, are its value as the LM wrote it: a string field's
	// text; any other value (number, bool, list) arrives as one piece, its JSON text.
	Field string `msgpack:"field"`
	Text  string `msgpack:"text"`
	// Prediction is set on the final chunk only: every output field, as ExecuteProgram
	// returns them.
	Prediction map[string]any `msgpack:"prediction"`
}

// Final reports whether c is the last chunk, the one carrying the Prediction.
func (c StreamChunk) Final() bool { return c.Prediction != nil }

// StreamProgram runs program id on inputs and yields its output fields as the LM produces
// them, then the prediction. An LM that answers in one piece (the dummy LM) yields the
// prediction alone.
//
// Breaking out of the loop, or ending ctx, stops the generation in Python: the worker's
// model stops at its next token and is free for the next call. A worker that lacks the
// program gets its definition first, as with ExecuteProgram.
func (c *Client) StreamProgram(ctx context.Context, id string, inputs map[string]any) iter.Seq2[StreamChunk, error] {
	return func(yield func(StreamChunk, error) bool) {
		ctx, end := mlbridge.TraceOperation(ctx, c.a, "dspy.StreamProgram")
		var final error
		defer func() { end(final) }()
		args := map[string]any{"program_id": id, "inputs": inputs}
		for r, err := range c.a.Stream(ctx, "stream_program", args, mlbridge.Uses(id)) {
			var chunk StreamChunk
			if err == nil {
				err = r.Decode(&chunk)
			}
			if !yield(chunk, err) || err != nil {
				final = err
				return
			}
		}
	}
}
