// Go's own answers for the readings meshguard ports from Go (src/mesh/go-text.ts, netip.ts,
// quantity.ts): reads a JSON array of strings on stdin, writes one JSON answer per string.
// Run by scripts/go-readings.ts, which records them in test/fixtures/go-readings.json. A false
// answer is left out.
package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

type answer struct {
	In       string `json:"in"`
	Prefix   bool   `json:"prefix,omitempty"`
	Uint16   bool   `json:"uint16,omitempty"`
	Uint32   bool   `json:"uint32,omitempty"`
	Bool     bool   `json:"bool,omitempty"`
	Quantity bool   `json:"quantity,omitempty"`
	// strings.TrimSpace, when it changes the string.
	Trim *string `json:"trim,omitempty"`
	// Sign of the quantity, and how it compares with the previous valid one (0 for the first).
	Sign int `json:"sign,omitempty"`
	Cmp  int `json:"cmp,omitempty"`
}

func main() {
	var inputs []string
	if err := json.NewDecoder(os.Stdin).Decode(&inputs); err != nil {
		panic(err)
	}
	out := make([]answer, 0, len(inputs))
	var prev *resource.Quantity
	for _, s := range inputs {
		a := answer{In: s}
		if t := strings.TrimSpace(s); t != s {
			a.Trim = &t
		}
		_, err := netip.ParsePrefix(s)
		a.Prefix = err == nil
		_, err = strconv.ParseUint(s, 10, 16)
		a.Uint16 = err == nil
		_, err = strconv.ParseUint(s, 10, 32)
		a.Uint32 = err == nil
		_, err = strconv.ParseBool(s)
		a.Bool = err == nil
		if q, err := resource.ParseQuantity(s); err == nil {
			a.Quantity = true
			a.Sign = q.Sign()
			if prev != nil {
				a.Cmp = q.Cmp(*prev)
			}
			prev = &q
		}
		out = append(out, a)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
