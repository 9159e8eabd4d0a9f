package cli

import (
	"fmt"
	"io"
	"time"
)

// progressBar draws one status line on a terminal.
type progressBar struct {
	w io.Writer
}

func newProgressBar(w io.Writer) *progressBar { return &progressBar{w: w} }

func (p *progressBar) update(msg string, done, total int64, elapsed time.Duration, final bool) {
	rate := ""
	if s := elapsed.Seconds(); s > 0 {
		rate = fmt.Sprintf(" %s/s", fmtBytes(int64(float64(done)/s)))
	}
	eta := ""
	if total > 0 && done > 0 && done < total {
		left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
		eta = fmt.Sprintf(" %3.0f%% ETA %s", 100*float64(done)/float64(total), left.Round(time.Second))
	}
	fmt.Fprintf(p.w, "\r\033[K[%s] %s%s%s", elapsed.Round(time.Second), msg, rate, eta)
	if final {
		fmt.Fprintln(p.w)
	}
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
