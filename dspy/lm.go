package dspy

// LMConfig selects the language model every worker uses, including workers started later.
type LMConfig struct {
	// Provider is one of:
	//   - "local" (also the zero value): the embedded SmolLM2-135M-Instruct, run in each
	//     worker by llama.cpp — offline, no key; ModelPath, Threads and ContextSize tune it.
	//   - "openai_compatible": any provider DSPy supports, by Model ("openai/..." is assumed
	//     when BaseURL is set and Model has no provider prefix), BaseURL and APIKeyEnv.
	//   - "dummy": DSPy's DummyLM (tests): it answers Answers in order, or, with
	//     AnswersByPrompt, the answer whose key the prompt's last message contains; with
	//     FollowExamples, a question that is one of the prompt's few-shot demos gets that
	//     demo's answer (DSPy's DummyLM "follow examples" mode: demos an optimizer chose
	//     change what it answers) and any other question no answer at all (a parse error).
	Provider  string
	Model     string
	BaseURL   string
	APIKeyEnv string // the *name* of the variable holding the key, never the key
	// NumRetries is how often DSPy retries a failed provider call (rate limits, server
	// errors): 0 keeps DSPy's default (3), a negative value turns retries off.
	NumRetries  int
	Temperature float64
	MaxTokens   int
	Answers     []map[string]any
	// AnswersByPrompt (dummy): answers by a text the prompt contains, instead of Answers.
	AnswersByPrompt map[string]map[string]any
	FollowExamples  bool // dummy: answer from the prompt's demos (see Provider)

	ModelPath   string // local: a GGUF file instead of the packaged model
	Threads     int    // local: llama.cpp threads per worker (default 1: the pool is the parallelism)
	ContextSize int    // local: context window in tokens (default 2048)

	// Adapter is the DSPy adapter that formats prompts: "json" (default for local: it asks
	// for the signature's JSON schema, which llama.cpp enforces) or "chat" (DSPy's default).
	Adapter string
}

func (c LMConfig) spec() map[string]any {
	provider := c.Provider
	if provider == "" {
		provider = "local"
	}
	s := map[string]any{"provider": provider}
	set := func(k string, v any, ok bool) {
		if ok {
			s[k] = v
		}
	}
	set("model", c.Model, c.Model != "")
	set("base_url", c.BaseURL, c.BaseURL != "")
	set("api_key_env", c.APIKeyEnv, c.APIKeyEnv != "")
	set("temperature", c.Temperature, c.Temperature != 0)
	set("max_tokens", c.MaxTokens, c.MaxTokens != 0)
	set("model_path", c.ModelPath, c.ModelPath != "")
	set("n_threads", c.Threads, c.Threads != 0)
	set("n_ctx", c.ContextSize, c.ContextSize != 0)
	set("adapter", c.Adapter, c.Adapter != "")
	set("num_retries", max(c.NumRetries, 0), c.NumRetries != 0)
	set("follow_examples", c.FollowExamples, c.FollowExamples)
	if len(c.AnswersByPrompt) > 0 {
		byPrompt := make(map[string]any, len(c.AnswersByPrompt))
		for k, a := range c.AnswersByPrompt {
			byPrompt[k] = a
		}
		s["answers"] = byPrompt
	}
	if len(c.Answers) > 0 {
		answers := make([]any, len(c.Answers))
		for i, a := range c.Answers {
			answers[i] = a
		}
		s["answers"] = answers
	}
	return s
}
