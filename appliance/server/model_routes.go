package server

import (
	"errors"
	"net/http"
	"strconv"

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
	ts, err := s.o.Model.Targets(r.Context())
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": ts, "total": len(ts)})
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
	ps, err := s.o.Model.Policies(r.Context())
	if err != nil {
		modelError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": ps, "total": len(ps)})
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
	w.WriteHeader(http.StatusNoContent)
}
