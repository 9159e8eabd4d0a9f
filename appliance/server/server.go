// Package server is the appliance's HTTPS endpoint: the REST API under
// /api/v1 (JSON, errors as application/problem+json, an OpenAPI 3 document
// generated from the same route table that serves the requests), health
// (/healthz, /readyz) and Prometheus metrics (/metrics).
//
// Every API route names the permission it needs; a request without a valid
// bearer token or session cookie is answered 401, one whose role lacks the
// permission 403. Cookie-authenticated requests that change state must
// carry the session's CSRF token in X-CSRF-Token. Logins are rate limited
// per remote address. Every change is written to the audit log.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"bes/appliance/auth"
	"bes/appliance/model"
	"bes/store"
)

// Options configures a Server.
type Options struct {
	Repo     *store.Repo
	Accounts *auth.DB
	Model    *model.DB // storage targets, policies, assignments, jobs
	// Enqueue queues a policy's backups (run now); Wake tells the runner.
	Enqueue func(ctx context.Context, p *model.Policy, mode string) ([]model.Job, error)
	Wake    func()
	Logger  *slog.Logger
	Version string
	// Registry receives the server's metrics; /metrics serves it. Nil
	// makes a fresh one.
	Registry *prometheus.Registry
}

// Server is the appliance's HTTP handler.
type Server struct {
	o      Options
	log    *slog.Logger
	routes []route
	mux    *http.ServeMux
	limit  *limiter
	reg    *prometheus.Registry

	// Derived views recomputed at most once a second (dashboards tolerate
	// a second of staleness; ten thousand objects need not be recounted
	// for every request). One computation at a time: concurrent callers
	// wait for it and share its result.
	objs, dash, pols view
}

// view is a value recomputed at most once per viewTTL.
type view struct {
	mu  sync.Mutex
	at  time.Time
	val any
}

const viewTTL = time.Second

func (v *view) get(compute func() (any, error)) (any, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.val != nil && time.Since(v.at) < viewTTL {
		return v.val, nil
	}
	val, err := compute()
	if err != nil {
		return nil, err
	}
	v.val, v.at = val, time.Now()
	return val, nil
}

// invalidate drops the cached value (after a change).
func (v *view) invalidate() {
	v.mu.Lock()
	v.val = nil
	v.mu.Unlock()
}

// protected returns the protected objects (a view).
func (s *Server) protected(ctx context.Context) ([]model.ProtectedObject, error) {
	v, err := s.objs.get(func() (any, error) { return s.o.Model.ProtectedObjects(ctx, time.Now()) })
	if err != nil {
		return nil, err
	}
	return v.([]model.ProtectedObject), nil
}

// policies returns the policies (a view, dropped on every policy change).
func (s *Server) policies(ctx context.Context) ([]model.Policy, error) {
	v, err := s.pols.get(func() (any, error) { return s.o.Model.Policies(ctx) })
	if err != nil {
		return nil, err
	}
	return v.([]model.Policy), nil
}

// New builds the server and its route table.
func New(o Options) *Server {
	s := &Server{o: o, log: o.Logger, mux: http.NewServeMux(), limit: newLimiter(5, time.Minute)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.reg = o.Registry
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	s.reg.MustRegister(newRepoCollector(o.Repo))
	if o.Model != nil {
		s.reg.MustRegister(newModelCollector(o.Model))
	}
	s.routes = s.table()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no such resource", r.URL.Path)
	})
	return s
}

// Registry returns the metrics registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return securityHeaders(s.mux) }

// Serve serves HTTPS on ln until ctx ends, then shuts down gracefully
// within grace (in-flight requests finish; new connections are refused).
func (s *Server) Serve(ctx context.Context, ln net.Listener, cert *tls.Certificate, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}},
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// route is one API endpoint: the table serves requests and generates the
// OpenAPI document.
type route struct {
	method, path string
	perm         string // "" public; else an auth.Perm*
	summary      string
	tag          string
	handle       func(w http.ResponseWriter, r *http.Request, p *principal)
	audit        string // action name written to the audit log on success (changes)
}

// principal is the authenticated caller.
type principal struct {
	user    *auth.User
	session string // session cookie value, "" for bearer tokens
	remote  string
}

const sessionCookie = "bes_session"

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate resolves the caller from a bearer token or session cookie.
func (s *Server) authenticate(r *http.Request) (*principal, int, string) {
	ctx := r.Context()
	p := &principal{remote: remoteAddr(r)}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || s.o.Accounts == nil {
			return nil, http.StatusUnauthorized, "unsupported authorization scheme (use Bearer)"
		}
		u, err := s.o.Accounts.ByToken(ctx, strings.TrimSpace(tok))
		if err != nil {
			return nil, http.StatusUnauthorized, "invalid or expired token"
		}
		p.user = u
		return p, 0, ""
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || s.o.Accounts == nil {
		return nil, http.StatusUnauthorized, "authentication required (bearer token or session cookie)"
	}
	u, csrf, err := s.o.Accounts.BySession(ctx, c.Value)
	if err != nil {
		return nil, http.StatusUnauthorized, "session expired or invalid"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get("X-CSRF-Token") != csrf {
		return nil, http.StatusForbidden, "missing or wrong X-CSRF-Token"
	}
	p.user, p.session = u, c.Value
	return p, 0, ""
}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 8<<20)
		var p *principal
		if rt.perm != "" {
			var code int
			var why string
			p, code, why = s.authenticate(r)
			if p == nil {
				if code == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="bes"`)
				}
				problem(w, code, http.StatusText(code), why)
				return
			}
			if !auth.Allowed(p.user.Role, rt.perm) {
				problem(w, http.StatusForbidden, "forbidden", fmt.Sprintf("role %s lacks %s", p.user.Role, rt.perm))
				return
			}
		} else {
			p = &principal{remote: remoteAddr(r)}
		}
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		rt.handle(rec, r, p)
		if rt.audit != "" && rec.code < 300 && s.o.Accounts != nil {
			actor := "anonymous"
			if p.user != nil {
				actor = p.user.Name
			}
			if err := s.o.Accounts.Audit(r.Context(), auth.AuditEntry{Actor: actor, Action: rt.audit, Target: r.URL.Path, Remote: p.remote}); err != nil {
				s.log.Error("audit log write failed", "err", err)
			}
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// problem writes an RFC 9457 problem document.
func problem(w http.ResponseWriter, code int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": code, "detail": detail})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writePage answers one page (limit, offset) of items with their total.
func writePage[T any](w http.ResponseWriter, items []T, limit, offset int) {
	total := len(items)
	writeJSON(w, http.StatusOK, map[string]any{"items": items[min(offset, total):min(offset+limit, total)], "total": total, "limit": limit, "offset": offset})
}

// readJSON decodes a request body strictly.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errors.New("request body: trailing data after the JSON value")
	}
	return nil
}

// page reads limit/offset query parameters (limit 1-1000, default 100).
func page(r *http.Request) (limit, offset int, err error) {
	limit, offset = 100, 0
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, fmt.Errorf("limit %q: want 1-1000", v)
		}
	}
	if v := r.URL.Query().Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset %q: want a non-negative integer", v)
		}
	}
	return limit, offset, nil
}

// limiter is a per-key fixed-window rate limiter for logins.
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	seen   map[string][]time.Time
}

func newLimiter(n int, window time.Duration) *limiter {
	return &limiter{n: n, window: window, seen: map[string][]time.Time{}}
}

// allow records an attempt by key and reports whether it is within limits.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.seen[key][:0]
	for _, t := range l.seen[key] {
		if now.Sub(t) < l.window {
			ts = append(ts, t)
		}
	}
	if len(ts) >= l.n {
		l.seen[key] = ts
		return false
	}
	l.seen[key] = append(ts, now)
	return true
}
