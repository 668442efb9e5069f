// Package flags picks the DSPy backend by a feature flag: the legacy pool, the current
// client on the same pool (this module was half migrated), or a shadow mode that serves the
// legacy answer and compares it with the current one.
package flags

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/mlbridge/mlbridge/adapters"
	mldspy "github.com/mlbridge/mlbridge/dspy"
)

// Flag is the environment variable that chooses the backend.
const Flag = "CORPUS_DSPY_BACKEND"

// Backend answers questions with one program.
type Backend interface {
	Answer(ctx context.Context, question string) (string, error)
}

// FromEnv reads Flag; "legacy" when unset.
func FromEnv() string {
	if v := os.Getenv(Flag); v != "" {
		return v
	}
	return "legacy"
}

// Choose returns the backend flag names, for program id on pool.
func Choose(flag string, pool *adapters.PythonPoolV2, id string) (Backend, error) {
	switch flag {
	case "legacy":
		return legacyBackend{pool: pool, id: id}, nil
	case "current":
		return currentBackend{client: pool.Client, id: id}, nil
	case "shadow":
		return &Shadow{Serve: legacyBackend{pool: pool, id: id}, Compare: currentBackend{client: pool.Client, id: id}}, nil
	default:
		return nil, fmt.Errorf("flags: unknown backend %q", flag)
	}
}

type legacyBackend struct {
	pool *adapters.PythonPoolV2
	id   string
}

func (b legacyBackend) Answer(ctx context.Context, question string) (string, error) {
	out, err := b.pool.ExecuteProgram(ctx, b.id, map[string]any{"question": question})
	if err != nil {
		return "", err
	}
	return fmt.Sprint(out["answer"]), nil
}

type currentBackend struct {
	client *mldspy.Client
	id     string
}

func (b currentBackend) Answer(ctx context.Context, question string) (string, error) {
	out, err := b.client.ExecuteProgram(ctx, b.id, map[string]any{"question": question})
	if err != nil {
		return "", err
	}
	return fmt.Sprint(out["answer"]), nil
}

// Shadow serves Serve's answers and counts how often Compare disagrees.
type Shadow struct {
	Serve, Compare Backend
	Mismatches     atomic.Int64
}

// Answer is Serve's answer; Compare runs on the same question.
func (s *Shadow) Answer(ctx context.Context, question string) (string, error) {
	got, err := s.Serve.Answer(ctx, question)
	other, otherErr := s.Compare.Answer(ctx, question)
	if other != got || (err == nil) != (otherErr == nil) {
		s.Mismatches.Add(1)
	}
	return got, err
}
