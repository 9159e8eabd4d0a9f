package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"bes/appliance/auth"
	"bes/appliance/model"
	"bes/store"
	"bes/store/catalog"
	"bes/store/manifest"
)

// table lists every route. Routes of the model that later work fills in
// (policies, storage targets, hosts, jobs, protected objects) are declared
// here already, with their permissions, and answer 501 until then.
func (s *Server) table() []route {
	todo := func(what string) func(http.ResponseWriter, *http.Request, *principal) {
		return func(w http.ResponseWriter, r *http.Request, _ *principal) {
			problem(w, http.StatusNotImplemented, "not implemented yet", what+" arrive with the scheduler and policy model")
		}
	}
	v := auth.PermView
	m := auth.PermManage
	return []route{
		{method: "GET", path: "/healthz", summary: "liveness: the process serves", tag: "health", handle: s.healthz},
		{method: "GET", path: "/readyz", summary: "readiness: repository and account database answer", tag: "health", handle: s.readyz},
		{method: "GET", path: "/api/v1/openapi.json", summary: "this API's OpenAPI 3 document", tag: "meta", handle: s.openapi},
		{method: "GET", path: "/api/v1/version", summary: "version of the appliance", tag: "meta", handle: s.version},
		{method: "POST", path: "/api/v1/auth/login", summary: "log in with user name and password: a session cookie (console) and CSRF token", tag: "auth", handle: s.login, audit: "auth.login"},
		{method: "POST", path: "/api/v1/auth/logout", perm: v, summary: "end the session", tag: "auth", handle: s.logout, audit: "auth.logout"},
		{method: "GET", path: "/api/v1/me", perm: v, summary: "the calling user", tag: "auth", handle: s.me},
		{method: "POST", path: "/api/v1/me/password", perm: v, summary: "change the calling user's password", tag: "auth", handle: s.changePassword, audit: "user.password"},
		{method: "GET", path: "/api/v1/users", perm: auth.PermAdmin, summary: "list users", tag: "auth", handle: s.listUsers},
		{method: "POST", path: "/api/v1/users", perm: auth.PermAdmin, summary: "create a user (viewer, builder, restore-operator, admin)", tag: "auth", handle: s.createUser, audit: "user.create"},
		{method: "GET", path: "/api/v1/tokens", perm: v, summary: "list the caller's API tokens (admins: all)", tag: "auth", handle: s.listTokens},
		{method: "POST", path: "/api/v1/tokens", perm: v, summary: "create an API token for the caller (shown once)", tag: "auth", handle: s.createToken, audit: "token.create"},
		{method: "DELETE", path: "/api/v1/tokens/{id}", perm: v, summary: "revoke an API token", tag: "auth", handle: s.revokeToken, audit: "token.revoke"},
		{method: "GET", path: "/api/v1/audit", perm: auth.PermAdmin, summary: "the append-only audit log, newest first (before=ID cursor, limit)", tag: "auth", handle: s.auditLog},
		{method: "GET", path: "/api/v1/dashboard", perm: v, summary: "counts, engine status, last 24 hours, exception queues", tag: "dashboard", handle: s.dashboard},
		{method: "GET", path: "/api/v1/restore-points", perm: v, summary: "list restore points (host, kind, type, since, until, limit, offset)", tag: "restore-points", handle: s.listPoints},
		{method: "GET", path: "/api/v1/restore-points/{id}", perm: v, summary: "one restore point", tag: "restore-points", handle: s.getPoint},
		{method: "GET", path: "/api/v1/restore-points/{id}/browse", perm: v, summary: "the entries of a directory of a file point (path)", tag: "restore-points", handle: s.browsePoint},
		{method: "GET", path: "/api/v1/restore-points/{id}/search", perm: v, summary: "entries of a file point matching a glob (q, limit)", tag: "restore-points", handle: s.searchPoint},
		{method: "POST", path: "/api/v1/restore-points/{id}/restore", perm: auth.PermRestore, summary: "restore files (up to 10,000 paths; none: all) to an absolute target path on a host, optionally overwriting: queues a high-priority restore job", tag: "restore-points", handle: s.restoreFiles, audit: "restore.files"},
		{method: "POST", path: "/api/v1/restore-points/{id}/image-restore", perm: auth.PermRestore, summary: "restore a disk image to a target", tag: "restore-points", handle: todo("image restore jobs"), audit: "restore.image"},
		{method: "DELETE", path: "/api/v1/restore-points/{id}", perm: auth.PermAdmin, summary: "forget a restore point (refused while it is locked; space comes back with gc)", tag: "restore-points", handle: s.deletePoint, audit: "point.delete"},
		{method: "GET", path: "/api/v1/policies", perm: v, summary: "list policies", tag: "policies", handle: s.listPolicies},
		{method: "POST", path: "/api/v1/policies", perm: m, summary: "create a policy", tag: "policies", handle: s.putPolicy, audit: "policy.create"},
		{method: "GET", path: "/api/v1/policies/{id}", perm: v, summary: "one policy", tag: "policies", handle: s.getPolicy},
		{method: "PUT", path: "/api/v1/policies/{id}", perm: m, summary: "change a policy", tag: "policies", handle: s.putPolicy, audit: "policy.update"},
		{method: "DELETE", path: "/api/v1/policies/{id}", perm: m, summary: "delete a policy (cascades to its assignments, replica rules and hooks)", tag: "policies", handle: s.deletePolicy, audit: "policy.delete"},
		{method: "POST", path: "/api/v1/policies/{id}/run", perm: m, summary: "run a policy now (mode full or incremental): queues a backup of each active host", tag: "policies", handle: s.runPolicy, audit: "policy.run"},
		{method: "POST", path: "/api/v1/policies/{id}/hosts", perm: m, summary: "assign a host to a policy with the paths to protect (reactivates an archived assignment)", tag: "hosts", handle: s.assignHost, audit: "host.assign"},
		{method: "GET", path: "/api/v1/storage-targets", perm: v, summary: "list storage targets", tag: "storage", handle: s.listTargets},
		{method: "POST", path: "/api/v1/storage-targets", perm: m, summary: "create a storage target (credentials are stored encrypted, never returned)", tag: "storage", handle: s.putTarget, audit: "target.create"},
		{method: "GET", path: "/api/v1/storage-targets/{id}", perm: v, summary: "one storage target", tag: "storage", handle: s.getTarget},
		{method: "PUT", path: "/api/v1/storage-targets/{id}", perm: m, summary: "change a storage target (new credentials rotate the stored ones)", tag: "storage", handle: s.putTarget, audit: "target.update"},
		{method: "GET", path: "/api/v1/storage-targets/{id}/capacity", perm: v, summary: "capacity: usage, growth per day (EWMA), estimated full date, level, and the history (since)", tag: "storage", handle: s.targetCapacity},
		{method: "DELETE", path: "/api/v1/storage-targets/{id}", perm: m, summary: "delete a storage target (refused while a policy uses it)", tag: "storage", handle: s.deleteTarget, audit: "target.delete"},
		{method: "GET", path: "/api/v1/hosts", perm: v, summary: "list host assignments (policy, host, state, paths)", tag: "hosts", handle: s.listHosts},
		{method: "GET", path: "/api/v1/jobs", perm: v, summary: "list jobs, newest first (status, policy_id, host, limit, offset)", tag: "jobs", handle: s.listJobs},
		{method: "GET", path: "/api/v1/jobs/{id}", perm: v, summary: "one job", tag: "jobs", handle: s.getJob},
		{method: "POST", path: "/api/v1/jobs/{id}/retry", perm: m, summary: "retry a failed job (only the latest run of its policy and host, when retryable and nothing of theirs is pending or running)", tag: "jobs", handle: s.retryJob, audit: "job.retry"},
		{method: "GET", path: "/api/v1/protected-objects", perm: v, summary: "list protected objects with RPO and breach (status, breach, host, limit, offset)", tag: "protection", handle: s.protectedObjects},
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ *principal) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *principal) {
	checks := map[string]string{}
	ok := true
	if s.o.Repo != nil {
		if _, err := s.o.Repo.Points(r.Context(), catalog.PointFilter{Kind: "none"}); err != nil {
			checks["repository"], ok = err.Error(), false
		} else {
			checks["repository"] = "ok"
		}
	}
	if s.o.Accounts != nil {
		if err := s.o.Accounts.Ping(r.Context()); err != nil {
			checks["accounts"], ok = err.Error(), false
		} else {
			checks["accounts"] = "ok"
		}
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"ready": ok, "checks": checks})
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request, _ *principal) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.o.Version})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, p *principal) {
	if !s.limit.allow(p.remote, time.Now()) {
		w.Header().Set("Retry-After", "60")
		problem(w, http.StatusTooManyRequests, "too many login attempts", "try again in a minute")
		return
	}
	var in struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := readJSON(r, &in); err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	u, err := s.o.Accounts.Login(r.Context(), in.User, in.Password)
	if err != nil {
		problem(w, http.StatusUnauthorized, "login failed", auth.ErrBadCredentials.Error())
		return
	}
	sid, csrf, err := s.o.Accounts.NewSession(r.Context(), u.ID, 12*time.Hour)
	if err != nil {
		problem(w, http.StatusInternalServerError, "login failed", err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sid, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int((12 * time.Hour).Seconds())})
	writeJSON(w, http.StatusOK, map[string]any{"user": u, "csrf_token": csrf})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *principal) {
	if p.session != "" {
		s.o.Accounts.EndSession(r.Context(), p.session)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, _ *http.Request, p *principal) {
	writeJSON(w, http.StatusOK, map[string]any{"user": p.user, "permissions": auth.Roles[p.user.Role]})
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct {
		Current string `json:"current"`
		New     string `json:"new"`
	}
	if err := readJSON(r, &in); err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	if _, err := s.o.Accounts.Login(r.Context(), p.user.Name, in.Current); err != nil {
		problem(w, http.StatusUnprocessableEntity, "wrong current password", "the current password does not match")
		return
	}
	if err := s.o.Accounts.SetPassword(r.Context(), p.user.ID, in.New); err != nil {
		problem(w, http.StatusBadRequest, "password refused", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ *principal) {
	us, err := s.o.Accounts.Users(r.Context())
	if err != nil {
		problem(w, http.StatusInternalServerError, "users", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": us})
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ *principal) {
	var in struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	if err := readJSON(r, &in); err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	u, err := s.o.Accounts.AddUser(r.Context(), in.Name, in.Role, in.Password, true)
	switch {
	case errors.Is(err, auth.ErrExists):
		problem(w, http.StatusConflict, "user exists", err.Error())
	case err != nil:
		problem(w, http.StatusBadRequest, "user refused", err.Error())
	default:
		writeJSON(w, http.StatusCreated, u)
	}
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *principal) {
	uid := p.user.ID
	if auth.Allowed(p.user.Role, auth.PermAdmin) {
		uid = 0
	}
	ts, err := s.o.Accounts.Tokens(r.Context(), uid)
	if err != nil {
		problem(w, http.StatusInternalServerError, "tokens", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct {
		Name    string `json:"name"`
		TTLDays int    `json:"ttl_days"`
	}
	if err := readJSON(r, &in); err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	if in.Name == "" || in.TTLDays < 0 || in.TTLDays > 3650 {
		problem(w, http.StatusBadRequest, "token refused", "name required; ttl_days 0 (no expiry) to 3650")
		return
	}
	secret, t, err := s.o.Accounts.NewToken(r.Context(), p.user.ID, in.Name, time.Duration(in.TTLDays)*24*time.Hour)
	if err != nil {
		problem(w, http.StatusInternalServerError, "token", err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "info": t})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *principal) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad token id", r.PathValue("id"))
		return
	}
	uid := p.user.ID
	if auth.Allowed(p.user.Role, auth.PermAdmin) {
		uid = 0
	}
	if err := s.o.Accounts.RevokeToken(r.Context(), id, uid); err != nil {
		problem(w, http.StatusNotFound, "no such token", "")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, _ *principal) {
	limit, _, err := page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	es, err := s.o.Accounts.AuditLog(r.Context(), before, limit)
	if err != nil {
		problem(w, http.StatusInternalServerError, "audit", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": es})
}

type pointJSON struct {
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Host         string    `json:"host"`
	Kind         string    `json:"kind"`
	Type         string    `json:"type"`
	Status       string    `json:"status"`
	Chain        string    `json:"chain"`
	Parent       string    `json:"parent,omitempty"`
	Policy       string    `json:"policy,omitempty"`
	Paths        []string  `json:"paths,omitempty"`
	Files        int64     `json:"files"`
	Bytes        int64     `json:"bytes"`
	NewBytes     int64     `json:"new_bytes"`
	StoredBytes  int64     `json:"stored_bytes"`
	VerifyStatus string    `json:"verify_status"`
	RetainUntil  time.Time `json:"retain_until,omitzero"`
}

func toPointJSON(p store.PointInfo) pointJSON {
	return pointJSON{ID: p.ID, Time: p.Started, Host: p.Host, Kind: p.Kind, Type: p.Type, Status: p.Status, Chain: p.Chain,
		Parent: p.Parent, Policy: p.Policy, Paths: p.Paths, Files: p.Stats.Files, Bytes: p.Stats.Bytes, NewBytes: p.Stats.NewBytes,
		StoredBytes: p.Stats.Stored, VerifyStatus: p.VerifyStatus, RetainUntil: p.RetainUntil}
}

func (s *Server) listPoints(w http.ResponseWriter, r *http.Request, _ *principal) {
	q := r.URL.Query()
	limit, offset, err := page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	var since, until time.Time
	for _, tv := range []struct {
		name string
		t    *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(tv.name); v != "" {
			if *tv.t, err = time.Parse(time.RFC3339, v); err != nil {
				problem(w, http.StatusBadRequest, "bad request", tv.name+": want RFC 3339")
				return
			}
		}
	}
	ps, err := s.o.Repo.Points(r.Context(), catalog.PointFilter{Host: q.Get("host"), Kind: q.Get("kind")})
	if err != nil {
		problem(w, http.StatusInternalServerError, "restore points", err.Error())
		return
	}
	out := []pointJSON{}
	for i := len(ps) - 1; i >= 0; i-- { // newest first
		p := ps[i]
		if t := q.Get("type"); t != "" && p.Type != t {
			continue
		}
		if (!since.IsZero() && p.Started.Before(since)) || (!until.IsZero() && p.Started.After(until)) {
			continue
		}
		out = append(out, toPointJSON(p))
	}
	writePage(w, out, limit, offset)
}

func (s *Server) findPoint(w http.ResponseWriter, r *http.Request) *store.Point {
	p, err := s.o.Repo.FindPoint(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrAmbiguous):
		problem(w, http.StatusNotFound, "no such restore point", err.Error())
		return nil
	case err != nil:
		problem(w, http.StatusInternalServerError, "restore point", err.Error())
		return nil
	}
	return p
}

func (s *Server) getPoint(w http.ResponseWriter, r *http.Request, _ *principal) {
	p := s.findPoint(w, r)
	if p == nil {
		return
	}
	ps, err := s.o.Repo.Points(r.Context(), catalog.PointFilter{Host: p.Host, Kind: p.Kind})
	if err != nil {
		problem(w, http.StatusInternalServerError, "restore point", err.Error())
		return
	}
	for _, pi := range ps {
		if pi.ID == p.ID {
			writeJSON(w, http.StatusOK, toPointJSON(pi))
			return
		}
	}
	problem(w, http.StatusNotFound, "no such restore point", p.ID)
}

type entryJSON struct {
	Path  string    `json:"path"`
	Kind  string    `json:"kind"`
	Size  int64     `json:"size"`
	Mode  string    `json:"mode"`
	MTime time.Time `json:"mtime"`
}

func toEntry(e *manifest.Entry) entryJSON {
	return entryJSON{Path: "/" + e.Path, Kind: e.Kind.String(), Size: e.Size, Mode: "0" + strconv.FormatUint(uint64(e.Mode), 8), MTime: time.Unix(0, e.MTime).UTC()}
}

func (s *Server) browsePoint(w http.ResponseWriter, r *http.Request, _ *principal) {
	p := s.findPoint(w, r)
	if p == nil {
		return
	}
	dir := strings.Trim(path.Clean("/"+r.URL.Query().Get("path")), "/")
	limit, offset, err := page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	out := []entryJSON{}
	total := 0
	err = s.o.Repo.WalkManifest(r.Context(), p, func(e *manifest.Entry) error {
		if parent := path.Dir(e.Path); (dir == "" && parent == ".") || parent == dir {
			if total >= offset && len(out) < limit {
				out = append(out, toEntry(e))
			}
			total++
		}
		return nil
	})
	if err != nil {
		problem(w, http.StatusInternalServerError, "browse", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"path": "/" + dir, "items": out, "total": total, "limit": limit, "offset": offset})
}

func (s *Server) searchPoint(w http.ResponseWriter, r *http.Request, _ *principal) {
	p := s.findPoint(w, r)
	if p == nil {
		return
	}
	q := r.URL.Query().Get("q")
	if q == "" {
		problem(w, http.StatusBadRequest, "bad request", "q (a glob on the base name, or on the whole path when it has a '/') is required")
		return
	}
	if _, err := path.Match(q, ""); err != nil {
		problem(w, http.StatusBadRequest, "bad glob", err.Error())
		return
	}
	limit, _, err := page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	out := []entryJSON{}
	more := false
	err = s.o.Repo.WalkManifest(r.Context(), p, func(e *manifest.Entry) error {
		subject := path.Base(e.Path)
		if strings.Contains(q, "/") {
			subject = "/" + e.Path
		}
		if ok, _ := path.Match(q, subject); ok {
			if len(out) == limit {
				more = true
				return errStop
			}
			out = append(out, toEntry(e))
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		problem(w, http.StatusInternalServerError, "search", err.Error())
		return
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "truncated": more})
}

var errStop = errors.New("stop")

func (s *Server) deletePoint(w http.ResponseWriter, r *http.Request, _ *principal) {
	p := s.findPoint(w, r)
	if p == nil {
		return
	}
	_, err := s.o.Repo.Forget(r.Context(), []string{p.ID})
	switch {
	case errors.Is(err, store.ErrPointLocked):
		problem(w, http.StatusConflict, "point is locked", err.Error())
	case err != nil:
		problem(w, http.StatusInternalServerError, "forget", err.Error())
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, p *principal) {
	v, err := s.dash.get(func() (any, error) {
		rec := &bufferWriter{header: http.Header{}, code: http.StatusOK}
		s.dashboardNow(rec, r, p)
		if rec.code != http.StatusOK {
			return nil, errors.New(rec.body.String())
		}
		return rec.body.Bytes(), nil
	})
	if err != nil {
		problem(w, http.StatusInternalServerError, "dashboard", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(v.([]byte))
}

func (s *Server) dashboardNow(w http.ResponseWriter, r *http.Request, _ *principal) {
	ps, err := s.o.Repo.Points(r.Context(), catalog.PointFilter{})
	if err != nil {
		problem(w, http.StatusInternalServerError, "dashboard", err.Error())
		return
	}
	day := time.Now().Add(-24 * time.Hour)
	hosts := map[string]bool{}
	var last24, verifyFailed int
	for _, p := range ps {
		hosts[p.Host] = true
		if p.Finished.After(day) {
			last24++
		}
		if p.VerifyStatus == "failed" {
			verifyFailed++
		}
	}
	counts := map[string]int{"protected": 0, "at_risk": 0, "rpo_breach": 0, "unprotected_hosts": 0}
	var breaches []model.ProtectedObject
	if s.o.Model != nil {
		if objs, err := s.protected(r.Context()); err == nil {
			assigned := map[string]bool{}
			for _, o := range objs {
				if o.State != "active" {
					continue
				}
				assigned[o.Host] = true
				counts["protected"]++
				if o.AtRisk {
					counts["at_risk"]++
				}
				if o.Breach {
					counts["rpo_breach"]++
					breaches = append(breaches, o)
				}
			}
			for h := range hosts {
				if !assigned[h] {
					counts["unprotected_hosts"]++ // has points but no active assignment
				}
			}
		}
	}
	exc := s.exceptions(r, verifyFailed)
	if breaches != nil {
		exc["rpo_breaches"] = breaches
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"counts":            counts,
		"engine":            map[string]any{"status": "running", "version": s.o.Version},
		"restore_points":    len(ps),
		"hosts_with_points": len(hosts),
		"last_24h":          map[string]int{"success": last24, "warning": 0, "failed": 0},
		"exceptions":        s.exceptions(r, verifyFailed),
	})
}

// exceptions lists the dashboard's exception queues.
func (s *Server) exceptions(r *http.Request, verifyFailed int) map[string]any {
	out := map[string]any{"failed_backups": []any{}, "rpo_breaches": []any{}, "storage_alerts": []any{}, "verification_failures": verifyFailed}
	if s.o.Model == nil {
		return out
	}
	ctx := r.Context()
	if objs, err := s.protected(ctx); err == nil {
		var failed []any
		for _, o := range objs {
			if o.LastStatus == model.StatusFailed { // the latest run of this policy and host failed
				failed = append(failed, map[string]any{"job_id": o.LastJob, "policy_id": o.PolicyID, "host": o.Host,
					"retry": fmt.Sprintf("/api/v1/jobs/%d/retry", o.LastJob)})
			}
		}
		if failed != nil {
			out["failed_backups"] = failed
		}
	}
	if ts, err := s.o.Model.Targets(ctx); err == nil {
		var alerts []any
		for _, t := range ts {
			if c, err := s.o.Model.CapacityOf(ctx, t.ID); err == nil && (c.Level == "alert" || c.Level == "critical") {
				alerts = append(alerts, map[string]any{"storage_target_id": t.ID, "name": t.Name, "level": c.Level, "used_percent": c.UsedPercent})
			}
		}
		if alerts != nil {
			out["storage_alerts"] = alerts
		}
	}
	return out
}

func (s *Server) restoreFiles(w http.ResponseWriter, r *http.Request, _ *principal) {
	if !s.needModel(w) {
		return
	}
	p := s.findPoint(w, r)
	if p == nil {
		return
	}
	var in struct {
		Paths     []string `json:"paths"`
		Target    string   `json:"target"`
		Host      string   `json:"host"`
		Overwrite bool     `json:"overwrite"`
	}
	if err := readJSON(r, &in); err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	if in.Host == "" {
		in.Host = "local"
	}
	if len(in.Paths) > 10000 {
		problem(w, http.StatusUnprocessableEntity, "too many paths", fmt.Sprintf("%d paths: at most 10,000 per restore", len(in.Paths)))
		return
	}
	if err := checkRestoreTarget(in.Target); err != nil {
		problem(w, http.StatusUnprocessableEntity, "bad target", err.Error())
		return
	}
	for _, ip := range in.Paths {
		if ip == "" || manifest.ValidPath(strings.Trim(ip, "/")) != nil {
			problem(w, http.StatusUnprocessableEntity, "bad path", fmt.Sprintf("path %q: a path inside the point (no '..', no empty components)", ip))
			return
		}
	}
	if p.Kind != store.KindFile {
		problem(w, http.StatusUnprocessableEntity, "image point", "files are restored from file points; use image-restore")
		return
	}
	j := model.Job{Kind: model.JobRestore, Host: in.Host, PointID: p.ID, Paths: in.Paths, Target: in.Target, Overwrite: in.Overwrite,
		Priority: model.PriorityHigh, Trigger: "manual", Attempt: 1}
	if err := s.o.Model.Enqueue(r.Context(), &j); err != nil {
		modelError(w, err)
		return
	}
	if s.o.Wake != nil {
		s.o.Wake()
	}
	writeJSON(w, http.StatusAccepted, j)
}

// checkRestoreTarget refuses anything but a clean absolute path outside
// the system's own directories.
func checkRestoreTarget(t string) error {
	if t == "" || !path.IsAbs(t) {
		return fmt.Errorf("target %q: an absolute path is required", t)
	}
	if path.Clean(t) != strings.TrimSuffix(t, "/") && path.Clean(t) != t {
		return fmt.Errorf("target %q: not a clean path (no '.', '..' or repeated '/')", t)
	}
	for _, seg := range strings.Split(t, "/") {
		if seg == ".." || seg == "." {
			return fmt.Errorf("target %q: no '.' or '..' components", t)
		}
	}
	switch path.Clean(t) {
	case "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sbin", "/sys", "/usr", "/var":
		return fmt.Errorf("target %q: restoring over a system directory is refused (restore into a directory of its own)", t)
	}
	return nil
}

// bufferWriter is an http.ResponseWriter into memory (a view's body is
// computed once and served to many).
type bufferWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferWriter) WriteHeader(code int)        { b.code = code }
