// Command conformance runs polyctx conformance scenarios against Go's own
// context package; its output is the reference every other runner must match.
// See ../FORMAT.md for the scenario format.
package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	out := bufio.NewWriter(os.Stdout)
	status := 0
	for _, path := range os.Args[1:] {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			status = 1
			continue
		}
		name := strings.TrimSuffix(filepath.Base(path), ".ctx")
		run(name, string(src), out)
		// Flush per scenario so a runner that later hangs still shows how far it got.
		out.Flush()
	}
	os.Exit(status)
}
