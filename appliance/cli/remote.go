package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// remote is a client of a running daemon's API (--server URL, --token,
// --cacert), for the commands that work through it.
type remote struct {
	base  string
	token string
	hc    *http.Client
}

func (g *globals) remote() (*remote, error) {
	srv := g.server
	if srv == "" {
		srv = g.env.Getenv("BES_SERVER")
	}
	if srv == "" {
		return nil, errors.New("no daemon given: pass --server https://HOST:PORT or set BES_SERVER")
	}
	tok := g.token
	if tok == "" {
		tok = g.env.Getenv("BES_TOKEN")
	}
	if tok == "" {
		return nil, errors.New("no API token: pass --token or set BES_TOKEN (create one with POST /api/v1/tokens)")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	ca := g.cacert
	if ca == "" {
		ca = g.env.Getenv("BES_CACERT")
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate", ca)
		}
		tc.RootCAs = pool
	}
	return &remote{base: strings.TrimRight(srv, "/"), token: tok,
		hc: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tc}}}, nil
}

// call sends a request and decodes a JSON answer into out (problem
// documents become errors).
func (c *remote) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("daemon %s: %w", c.base, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if res.StatusCode >= 300 {
		var p struct{ Title, Detail string }
		if json.Unmarshal(b, &p) == nil && p.Title != "" {
			return fmt.Errorf("daemon: %s %s: %d %s: %s", method, path, res.StatusCode, p.Title, p.Detail)
		}
		return fmt.Errorf("daemon: %s %s: %s", method, path, res.Status)
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// remoteCmds are the commands that talk to a running daemon.
func remoteCmds(g *globals) []*cobra.Command {
	policies := &cobra.Command{
		Use:   "policies [--server URL --token T]",
		Short: "list the daemon's backup policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.remote()
			if err != nil {
				return err
			}
			var res struct {
				Items []map[string]any `json:"items"`
			}
			if err := c.call(cmd.Context(), "GET", "/api/v1/policies", nil, &res); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res.Items)
			}
			tw := tabwriter.NewWriter(g.env.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tTYPE\tFULL\tINCREMENTAL\tENABLED\tPAUSED")
			for _, p := range res.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", str(p["id"]), str(p["name"]), str(p["backup_type"]), str(p["full_schedule"]), str(p["incremental_schedule"]), str(p["enabled"]), str(p["paused_reason"]))
			}
			return tw.Flush()
		},
	}
	var mode string
	run := &cobra.Command{
		Use:   "run-policy ID [--mode full|incremental]",
		Short: "run a policy on the daemon now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.remote()
			if err != nil {
				return err
			}
			var res struct {
				Jobs []map[string]any `json:"jobs"`
			}
			if err := c.call(cmd.Context(), "POST", "/api/v1/policies/"+args[0]+"/run?mode="+mode, nil, &res); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			for _, j := range res.Jobs {
				g.printf("queued job %v for host %v\n", j["id"], j["host"])
			}
			if len(res.Jobs) == 0 {
				g.printf("nothing queued (no active host, or a run is already pending or running)\n")
			}
			return nil
		},
	}
	run.Flags().StringVar(&mode, "mode", "incremental", "full or incremental")
	var status string
	jobs := &cobra.Command{
		Use:   "jobs [--status S]",
		Short: "list the daemon's jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.remote()
			if err != nil {
				return err
			}
			var res struct {
				Items []map[string]any `json:"items"`
			}
			if err := c.call(cmd.Context(), "GET", "/api/v1/jobs?status="+status, nil, &res); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res.Items)
			}
			tw := tabwriter.NewWriter(g.env.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tPOLICY\tHOST\tSTATUS\tTRIGGER\tPOINT\tERROR")
			for _, j := range res.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.8s\t%s\n", str(j["id"]), str(j["kind"]), str(j["policy_id"]), str(j["host"]), str(j["status"]), str(j["trigger"]), str(j["restore_point_id"]), str(j["error"]))
			}
			return tw.Flush()
		},
	}
	jobs.Flags().StringVar(&status, "status", "", "only jobs in this status (pending, running, success, warning, failed)")
	retry := &cobra.Command{
		Use:   "retry-job ID",
		Short: "retry a failed job on the daemon",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.remote()
			if err != nil {
				return err
			}
			var j map[string]any
			if err := c.call(cmd.Context(), "POST", "/api/v1/jobs/"+args[0]+"/retry", nil, &j); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(j)
			}
			g.printf("queued retry job %v\n", j["id"])
			return nil
		},
	}
	return []*cobra.Command{policies, run, jobs, retry}
}

// str prints a decoded JSON value, nothing for null.
func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
