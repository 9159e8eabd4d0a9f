package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"bes/appliance/model"
)

// modelError maps model errors to problems.
func modelError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, model.ErrNotFound):
		problem(w, http.StatusNotFound, "not found", err.Error())
	case errors.Is(err, model.ErrInvalid):
		problem(w, http.StatusUnprocessableEntity, "invalid", err.Error())
	case errors.Is(err, model.ErrExists):
		problem(w, http.StatusConflict, "already exists", err.Error())
	case errors.Is(err, model.ErrInUse):
		problem(w, http.StatusConflict, "in use", err.Error())
	default:
		problem(w, http.StatusInternalServerError, "error", err.Error())
	}
}

func (s *Server) needModel(w http.ResponseWriter) bool {
	if s.o.Model == nil {
		problem(w, http.StatusServiceUnavailable, "no configuration model", "the server runs without its model database")
		return false
	}
	return true
}

// pathID reads the {id} path value; 0 with an answer sent when it is bad.
func pathID(w http.ResponseWriter, r *http.Request) int64 {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		problem(w, http.StatusBadRequest, "bad id", r.PathValue("id"))
		return 0
	}
	return id
}

func (s *Server) listTargets(w http.ResponseWriter, r *http.Request, _ *principal) {
	if !s.needModel(w) {
		return
	}
	limit, offset, err := page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	ts, err := s.o.Model.Targets(r.Context())
	if err != nil {
		modelError(w, err)
		return
	}
	writePage(w, ts, limit, offset)
}

func (s *Server) getTarget(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := pathID(w, r)
	if id == 0 || !s.needModel(w) {
		return
	}
	t, err := s.o.Model.Target(r.Context(), id)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) putTarget(w http.ResponseWriter, r *http.Request, _ *principal) {
	if !s.needModel(w) {
		return
	}
	var t model.StorageTarget
	if err := readJSON(r, &t); err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	code := http.StatusCreated
	t.ID = 0
	if r.Method == http.MethodPut {
		if t.ID = pathID(w, r); t.ID == 0 {
			return
		}
		code = http.StatusOK
	}
	if err := s.o.Model.PutTarget(r.Context(), &t); err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, code, t)
}

func (s *Server) deleteTarget(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := pathID(w, r)
	if id == 0 || !s.needModel(w) {
		return
	}
	if err := s.o.Model.DeleteTarget(r.Context(), id); err != nil {
		modelError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request, _ *principal) {
	if !s.needModel(w) {
		return
	}
	limit, offset, err := page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	ps, err := s.policies(r.Context())
	if err != nil {
		modelError(w, err)
		return
	}
	writePage(w, ps, limit, offset)
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := pathID(w, r)
	if id == 0 || !s.needModel(w) {
		return
	}
	p, err := s.o.Model.Policy(r.Context(), id)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request, _ *principal) {
	if !s.needModel(w) {
		return
	}
	var p model.Policy
	if err := readJSON(r, &p); err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	code := http.StatusCreated
	p.ID = 0
	if r.Method == http.MethodPut {
		if p.ID = pathID(w, r); p.ID == 0 {
			return
		}
		code = http.StatusOK
	}
	if err := s.o.Model.PutPolicy(r.Context(), &p); err != nil {
		modelError(w, err)
		return
	}
	s.pols.invalidate()
	s.objs.invalidate()
	writeJSON(w, code, p)
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := pathID(w, r)
	if id == 0 || !s.needModel(w) {
		return
	}
	if err := s.o.Model.DeletePolicy(r.Context(), id); err != nil {
		modelError(w, err)
		return
	}
	s.pols.invalidate()
	s.objs.invalidate()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) runPolicy(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := pathID(w, r)
	if id == 0 || !s.needModel(w) {
		return
	}
	mode := r.URL.Query().Get("mode")
	if mode == "" {
		mode = "incremental"
	}
	if mode != "full" && mode != "incremental" {
		problem(w, http.StatusBadRequest, "bad mode", "mode: full or incremental")
		return
	}
	p, err := s.o.Model.Policy(r.Context(), id)
	if err != nil {
		modelError(w, err)
		return
	}
	if s.o.Enqueue == nil {
		problem(w, http.StatusServiceUnavailable, "no job runner", "this server runs no jobs")
		return
	}
	js, err := s.o.Enqueue(r.Context(), p, mode)
	if err != nil {
		modelError(w, err)
		return
	}
	if s.o.Wake != nil {
		s.o.Wake()
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"jobs": js})
}

func (s *Server) assignHost(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := pathID(w, r)
	if id == 0 || !s.needModel(w) {
		return
	}
	var a model.Assignment
	if err := readJSON(r, &a); err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	a.PolicyID = id
	if err := s.o.Model.Assign(r.Context(), &a); err != nil {
		modelError(w, err)
		return
	}
	s.objs.invalidate()
	writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request, _ *principal) {
	if !s.needModel(w) {
		return
	}
	as, err := s.o.Model.Assignments(r.Context(), 0)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": as, "total": len(as)})
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, _ *principal) {
	if !s.needModel(w) {
		return
	}
	limit, offset, err := page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	q := r.URL.Query()
	f := model.JobFilter{Status: q.Get("status"), Host: q.Get("host"), Limit: limit, Offset: offset}
	if v := q.Get("policy_id"); v != "" {
		if f.PolicyID, err = strconv.ParseInt(v, 10, 64); err != nil {
			problem(w, http.StatusBadRequest, "bad request", "policy_id: an integer")
			return
		}
	}
	js, more, err := s.o.Model.Jobs(r.Context(), f)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": js, "has_more": more > 0, "limit": limit, "offset": offset})
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := pathID(w, r)
	if id == 0 || !s.needModel(w) {
		return
	}
	j, err := s.o.Model.Job(r.Context(), id)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) retryJob(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := pathID(w, r)
	if id == 0 || !s.needModel(w) {
		return
	}
	j, err := s.o.Model.Retry(r.Context(), id, "manual_retry")
	if errors.Is(err, model.ErrBusy) {
		problem(w, http.StatusConflict, "retry refused", err.Error())
		return
	}
	if err != nil {
		modelError(w, err)
		return
	}
	if s.o.Wake != nil {
		s.o.Wake()
	}
	writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) targetCapacity(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := pathID(w, r)
	if id == 0 || !s.needModel(w) {
		return
	}
	if _, err := s.o.Model.Target(r.Context(), id); err != nil {
		modelError(w, err)
		return
	}
	c, err := s.o.Model.CapacityOf(r.Context(), id)
	if err != nil {
		modelError(w, err)
		return
	}
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			problem(w, http.StatusBadRequest, "bad request", "since: want RFC 3339")
			return
		}
	}
	hist, err := s.o.Model.UsageHistory(r.Context(), id, since)
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"capacity": c, "history": hist})
}

func (s *Server) protectedObjects(w http.ResponseWriter, r *http.Request, _ *principal) {
	if !s.needModel(w) {
		return
	}
	limit, offset, err := page(r)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad request", err.Error())
		return
	}
	q := r.URL.Query()
	objs, err := s.protected(r.Context())
	if err != nil {
		modelError(w, err)
		return
	}
	out := []model.ProtectedObject{}
	for _, o := range objs {
		if st := q.Get("status"); st != "" && o.LastStatus != st {
			continue
		}
		if h := q.Get("host"); h != "" && o.Host != h {
			continue
		}
		if b := q.Get("breach"); b != "" && strconv.FormatBool(o.Breach) != b {
			continue
		}
		out = append(out, o)
	}
	writePage(w, out, limit, offset)
}
