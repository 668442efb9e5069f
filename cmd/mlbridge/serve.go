package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge"
)

const defaultAdminAddr = "127.0.0.1:7420"

func newServeCmd(g *globalFlags) *cobra.Command {
	var size int
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a pool of workers and its local HTTP endpoint (status, health, calls)",
		Long: `Starts a pool and serves on a local address:
  GET  /v1/status        pool statistics (what 'mlbridge status' prints)
  GET  /v1/node          the node's status (mlbridge.NodeHandler; read by 'mlbridge migrate status --node')
  GET  /v1/healthz       200 when every worker is ready, 503 otherwise
  POST /v1/call/{op}     JSON object in, JSON result out
Stops gracefully on SIGINT/SIGTERM: in-flight calls finish, then the workers stop.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := g.logger()
			p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
				Config: mlbridge.Config{Bridge: g.bridge, Python: g.python, Logger: log}, Size: size,
			})
			if err != nil {
				return err
			}
			defer p.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: adminMux(g.bridge, p), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "mlbridge: %d workers of %s ready; serving on http://%s\n", size, g.bridge, ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return errors.Join(srv.Shutdown(shutdownCtx), p.Shutdown(shutdownCtx))
		},
	}
	cmd.Flags().IntVar(&size, "workers", 2, "worker processes")
	cmd.Flags().StringVar(&addr, "addr", defaultAdminAddr, "listen address (keep it on loopback)")
	return cmd
}

func adminMux(name string, p *mlbridge.Pool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/node", mlbridge.NodeHandler(mlbridge.Named(name, p)))
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Stats())
	})
	mux.HandleFunc("GET /v1/healthz", func(w http.ResponseWriter, r *http.Request) {
		if p.Healthy() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
	})
	mux.HandleFunc("POST /v1/call/{op}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
			return
		}
		var args map[string]any
		if s := strings.TrimSpace(string(body)); s != "" {
			if args, err = parseArgs(s); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
		}
		res, err := p.Call(r.Context(), r.PathValue("op"), args)
		if err != nil {
			writeJSON(w, httpStatus(err), errorBody(err))
			return
		}
		v, err := res.Value()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"result": v})
	})
	return mux
}

func httpStatus(err error) int {
	switch {
	case errors.Is(err, mlbridge.ErrInvalidArgument), errors.Is(err, mlbridge.ErrUnknownOp):
		return http.StatusBadRequest
	case errors.Is(err, mlbridge.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, mlbridge.ErrOverloaded), errors.Is(err, mlbridge.ErrRateLimit):
		return http.StatusTooManyRequests
	case errors.Is(err, mlbridge.ErrTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, mlbridge.ErrClosed), errors.Is(err, mlbridge.ErrCrashLoop), errors.Is(err, mlbridge.ErrWorkerExited):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func errorBody(err error) map[string]any {
	body := map[string]any{"error": err.Error()}
	var re *mlbridge.RemoteError
	if errors.As(err, &re) {
		body["category"], body["type"] = re.Category, re.Type
	}
	return body
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
