// robfig_next prints when robfig/cron v3, as Kubernetes' CronJob controller
// parses a schedule (ParseStandard), next fires it. Each line of stdin is a
// base time (Unix seconds), a space and an expression; each line of stdout
// holds the expression's next -n fire times after the base, as Unix seconds
// separated by spaces: fewer when robfig gives up (it returns the zero time
// when nothing fires within five years), "error: ..." when ParseStandard
// refuses the expression. -tz evaluates the expressions in a zone, as a
// CronJob's timeZone does (CRON_TZ=).
//
// Built by tests/test_robfig_differential.py, offline, from Debian's
// golang-github-robfig-cron-dev (GO111MODULE=off GOPATH=/usr/share/gocode).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron"
)

func main() {
	count := flag.Int("n", 40, "fire times per expression")
	zone := flag.String("tz", "", "zone to evaluate the expressions in (CRON_TZ=)")
	flag.Parse()

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		base, spec, found := strings.Cut(in.Text(), " ")
		after, err := strconv.ParseInt(base, 10, 64)
		if !found || err != nil {
			fmt.Fprintf(os.Stderr, "expected '<unix seconds> <expression>', got %q\n", in.Text())
			os.Exit(2)
		}
		if *zone != "" {
			spec = "CRON_TZ=" + *zone + " " + spec
		}
		schedule, err := cron.ParseStandard(spec)
		if err != nil {
			fmt.Fprintf(out, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		times := make([]string, 0, *count)
		at := time.Unix(after, 0).UTC()
		for len(times) < *count {
			at = schedule.Next(at)
			if at.IsZero() {
				break
			}
			times = append(times, strconv.FormatInt(at.Unix(), 10))
		}
		fmt.Fprintln(out, strings.Join(times, " "))
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
