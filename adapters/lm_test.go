package adapters_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// The embedded local LM (the zero LMConfig) answers a ChainOfThought program on two workers at
// once with every declared field present and of its declared type. The model is small: the
// test checks structure, never wording.
func TestLocalLMTypedOutputs(t *testing.T) {
	ctx := context.Background()
	pool, err := adapters.NewPythonPoolV2(ctx, adapters.Options{Workers: 2, Python: testenv.Python(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.ConfigureLM(ctx, adapters.LMConfig{MaxTokens: 128}); err != nil {
		t.Fatal(err)
	}
	id, err := pool.CreateProgram(ctx, "question: str -> answer: str, confidence: float", adapters.WithModule("ChainOfThought"))
	if err != nil {
		t.Fatal(err)
	}
	questions := []string{"What is the capital of France?", "What color is the sky on a clear day?"}
	outs := make([]map[string]any, len(questions))
	errs := make([]error, len(questions))
	var wg sync.WaitGroup
	for i, q := range questions {
		wg.Go(func() { outs[i], errs[i] = pool.ExecuteProgram(ctx, id, map[string]any{"question": q}) })
	}
	wg.Wait()
	for i, out := range outs {
		if errs[i] != nil {
			t.Fatalf("question %d: %v", i, errs[i])
		}
		if len(out) != 3 {
			t.Errorf("question %d: want reasoning, answer, confidence; got %v", i, out)
		}
		_, okR := out["reasoning"].(string)
		_, okA := out["answer"].(string)
		_, okC := out["confidence"].(float64)
		if !okR || !okA || !okC {
			t.Errorf("question %d: fields of the wrong type: %#v", i, out)
		}
	}
}

// An OpenAI-compatible provider, reached by DSPy's own client with the key taken from the
// variable the config names: its answer becomes outputs, its refusals become categories.
func TestOpenAICompatibleProvider(t *testing.T) {
	var (
		mu     sync.Mutex
		status = http.StatusOK
		auth   string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		code := status
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if code != http.StatusOK {
			_, _ = w.Write([]byte(`{"error": {"message": "refused by the test provider", "type": "test"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
			"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
			"content": "[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]"}}],
			"usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}`))
	}))
	defer srv.Close()

	t.Setenv("MLBRIDGE_TEST_PROVIDER_KEY", "sk-test-42")
	ctx := context.Background()
	port, err := adapters.NewPythonPort(ctx, adapters.Options{Python: testenv.Python(t), EnvAllow: []string{"MLBRIDGE_TEST_PROVIDER_KEY"}})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if err := port.ConfigureLM(ctx, adapters.LMConfig{Provider: "openai_compatible", Model: "my-model",
		BaseURL: srv.URL + "/v1", APIKeyEnv: "MLBRIDGE_TEST_PROVIDER_KEY", NumRetries: -1}); err != nil {
		t.Fatal(err)
	}
	id, err := port.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	out, err := port.ExecuteProgram(ctx, id, map[string]any{"question": "capital of France?"})
	if err != nil || out["answer"] != "Paris" {
		t.Fatalf("execute: %v %v", out, err)
	}
	if auth != "Bearer sk-test-42" {
		t.Errorf("Authorization = %q, want the key from the named variable", auth)
	}
	for code, want := range map[int]error{
		http.StatusTooManyRequests:     mlbridge.ErrRateLimit,
		http.StatusUnauthorized:        mlbridge.ErrInvalidConfiguration,
		http.StatusBadRequest:          mlbridge.ErrInvalidArgument,
		http.StatusInternalServerError: mlbridge.ErrModel,
	} {
		mu.Lock()
		status = code
		mu.Unlock()
		_, err := port.ExecuteProgram(ctx, id, map[string]any{"question": "q"})
		var re *mlbridge.RemoteError
		if !errors.Is(err, want) || !errors.As(err, &re) || re.Type == "" {
			t.Errorf("HTTP %d: got %v, want %v", code, err, want)
		}
	}
}

func TestUnreachableProviderIsAModelError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens there now
	ctx := context.Background()
	port, err := adapters.NewPythonPort(ctx, adapters.Options{Python: testenv.Python(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if err := port.ConfigureLM(ctx, adapters.LMConfig{Provider: "openai_compatible", Model: "m", BaseURL: "http://" + addr + "/v1", NumRetries: -1}); err != nil {
		t.Fatal(err)
	}
	id, err := port.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := port.ExecuteProgram(ctx, id, map[string]any{"question": "q"}); !errors.Is(err, mlbridge.ErrModel) {
		t.Fatalf("got %v, want ErrModel", err)
	}
}

// A ConfigureLM that workers refuse is not kept: the LM configured before stays in force,
// including on a worker started afterwards (a refused definition kept in the store would stop
// every replacement worker from starting).
func TestRefusedLMConfigIsTakenBack(t *testing.T) {
	ctx := context.Background()
	port, err := adapters.NewPythonPort(ctx, adapters.Options{Python: testenv.Python(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if err := port.ConfigureLM(ctx, dummyLM(10)); err != nil {
		t.Fatal(err)
	}
	if err := port.ConfigureLM(ctx, adapters.LMConfig{Provider: "openai_compatible"}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("an LM without a model: %v", err)
	}
	id, err := port.CreateProgram(ctx, "question -> answer")
	if err != nil {
		t.Fatal(err)
	}
	old := port.GetStats().Workers[0].Pid
	_ = syscall.Kill(old, syscall.SIGKILL)
	for {
		out, err := port.ExecuteProgram(ctx, id, map[string]any{"question": "q"})
		if errors.Is(err, mlbridge.ErrWorkerExited) {
			continue // raced the kill
		}
		if err != nil || out["answer"] != "Paris" {
			t.Fatalf("on the replacement worker: %v %v", out, err)
		}
		break
	}
	if pid := port.GetStats().Workers[0].Pid; pid == old {
		t.Fatalf("the call ran on the killed worker %d", pid)
	}
}
