// Package sklearn is the typed scikit-learn client of the multi-framework API, over any
// mlbridge.Adapter running the scikit-learn bridge.
//
// Models are host-owned definitions: an allowlisted estimator or pipeline, and after Fit the
// trained state, which Fit stores back into the definition — so a model survives the loss of
// the worker that trained it. Arrays travel as binary (mlbridge.Array).
package sklearn

import (
	"context"
	"errors"
	"fmt"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/store"
)

// Bridge is the Python bridge class.
const Bridge = "mlbridge_worker.frameworks.sklearn_bridge:SklearnBridge"

// Client trains and runs scikit-learn models on an adapter.
type Client struct{ a mlbridge.Adapter }

// New returns a client for a, which must run the scikit-learn bridge.
func New(a mlbridge.Adapter) *Client { return &Client{a: a} }

// Estimator is one allowlisted estimator ("LogisticRegression", "StandardScaler", ...) and its
// constructor parameters.
type Estimator struct {
	Name   string
	Params map[string]any
}

func (e Estimator) spec() map[string]any {
	s := map[string]any{"estimator": e.Name}
	if len(e.Params) > 0 {
		s["params"] = e.Params
	}
	return s
}

// CreateModel defines model id: one estimator, or a pipeline of several in order. It redefines
// a model of that id; an id another kind of definition holds is mlbridge.ErrInvalidArgument.
func (c *Client) CreateModel(ctx context.Context, id string, steps ...Estimator) error {
	var spec map[string]any
	switch len(steps) {
	case 0:
		return fmt.Errorf("%w: a model needs an estimator", mlbridge.ErrInvalidArgument)
	case 1:
		spec = steps[0].spec()
	default:
		pipe := make([]any, len(steps))
		for i, s := range steps {
			pipe[i] = s.spec()
		}
		spec = map[string]any{"pipeline": pipe}
	}
	// Redefining a model is fine; replacing another kind's definition (a program, in a store
	// pools share) would lose it.
	switch d, err := c.a.Get(ctx, id); {
	case err == nil && d.Kind != "model":
		return fmt.Errorf("%w: id %q is a %s, not a model", mlbridge.ErrInvalidArgument, id, d.Kind)
	case err != nil && !errors.Is(err, mlbridge.ErrNotFound):
		return err
	}
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "sklearn.CreateModel")
	_, err := c.a.Create(ctx, store.Definition{ID: id, Kind: "model", Spec: spec})
	end(err)
	return err
}

// FitResult describes a training run.
type FitResult struct {
	Samples    int      `msgpack:"n_samples"`
	Features   int      `msgpack:"n_features"`
	Classes    []any    `msgpack:"classes"`
	TrainScore *float64 `msgpack:"train_score"`
	State      []byte   `msgpack:"state"`
}

// Fit trains model id on X and y, then stores the trained state in the model's definition —
// only over the version it trained: if the model was redefined or trained elsewhere meanwhile,
// that stays, and Fit returns an error matching store.ErrConflict (fit again to train it).
func (c *Client) Fit(ctx context.Context, id string, x, y mlbridge.Array) (FitResult, error) {
	return c.fit(ctx, id, map[string]any{"model_id": id, "X": x, "y": y})
}

// FitDataset trains model id on one of scikit-learn's bundled datasets (iris, digits, wine,
// breast_cancer, diabetes).
func (c *Client) FitDataset(ctx context.Context, id, dataset string) (FitResult, error) {
	return c.fit(ctx, id, map[string]any{"model_id": id, "dataset": dataset})
}

func (c *Client) fit(ctx context.Context, id string, args map[string]any) (_ FitResult, err error) {
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "sklearn.Fit")
	defer func() { end(err) }()
	d, err := c.a.Get(ctx, id)
	if err != nil {
		return FitResult{}, err
	}
	res, err := mlbridge.Decode[FitResult](c.a.Call(ctx, "fit", args, mlbridge.Uses(id)))
	if err != nil {
		return res, err
	}
	// stored only over the definition it was trained from: a model redefined (or trained
	// by someone else) meanwhile is not overwritten with a stale spec or a state it did not
	// produce (store.ErrConflict, the one the caller retries)
	d.State, d.IfVersion = res.State, d.Version
	if _, err := c.a.Create(ctx, d); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return res, fmt.Errorf("sklearn: model %q changed while it was trained (from version %d): its trained state was not stored: %w",
				id, d.Version, err)
		}
		return res, fmt.Errorf("storing the trained state of %q: %w", id, err)
	}
	return res, nil
}

// Predict runs model id on X.
func (c *Client) Predict(ctx context.Context, id string, x mlbridge.Array) (mlbridge.Array, error) {
	return c.arrayOp(ctx, "predict", id, x)
}

// PredictProba returns class probabilities of X under model id.
func (c *Client) PredictProba(ctx context.Context, id string, x mlbridge.Array) (mlbridge.Array, error) {
	return c.arrayOp(ctx, "predict_proba", id, x)
}

// Transform runs a transformer (a scaler, PCA) on X.
func (c *Client) Transform(ctx context.Context, id string, x mlbridge.Array) (mlbridge.Array, error) {
	return c.arrayOp(ctx, "transform", id, x)
}

// opSpans names the array operations' spans (constants: no string is built per call).
var opSpans = map[string]string{
	"predict": "sklearn.Predict", "predict_proba": "sklearn.PredictProba", "transform": "sklearn.Transform",
}

func (c *Client) arrayOp(ctx context.Context, op, id string, x mlbridge.Array) (mlbridge.Array, error) {
	ctx, end := mlbridge.TraceOperation(ctx, c.a, opSpans[op])
	out, err := mlbridge.Decode[mlbridge.Array](c.a.Call(ctx, op, map[string]any{"model_id": id, "X": x}, mlbridge.Uses(id)))
	end(err)
	return out, err
}

// Score is the model's default score on X and y (accuracy, R²...).
func (c *Client) Score(ctx context.Context, id string, x, y mlbridge.Array) (float64, error) {
	ctx, end := mlbridge.TraceOperation(ctx, c.a, "sklearn.Score")
	v, err := mlbridge.Decode[float64](c.a.Call(ctx, "score", map[string]any{"model_id": id, "X": x, "y": y}, mlbridge.Uses(id)))
	end(err)
	return v, err
}

// Dataset is one of scikit-learn's bundled datasets.
type Dataset struct {
	X            mlbridge.Array `msgpack:"X"`
	Y            mlbridge.Array `msgpack:"y"`
	FeatureNames []string       `msgpack:"feature_names"`
	TargetNames  []string       `msgpack:"target_names"`
}

// LoadDataset returns a bundled dataset (no network).
func (c *Client) LoadDataset(ctx context.Context, name string) (Dataset, error) {
	return mlbridge.Decode[Dataset](c.a.Call(ctx, "load_dataset", map[string]any{"name": name}))
}
