package mapping

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// zeroOf is a typed sample value, so expressions are type-checked against the
// mapping's declared field types when the mapping loads.
func zeroOf(typ string) any {
	switch typ {
	case TypeInt:
		return int64(0)
	case TypeDecimal:
		return float64(0)
	case TypeBool:
		return false
	case TypeTime:
		return time.Time{}
	}
	return ""
}

// exprFuncs are the helpers every expression may call. now() reads the injected
// clock, so quiet hours and due dates are testable at any hour. A helper whose result
// depends on the clock must also be listed in clockReaders, which keeps it out of
// computed fields.
func exprFuncs(clock func() time.Time) []expr.Option {
	return []expr.Option{
		expr.Function("now", func(...any) (any, error) { return clock().UTC(), nil }, new(func() time.Time)),
		expr.Function("fold", func(args ...any) (any, error) { return transform.Fold(fmt.Sprint(args[0])), nil }, new(func(string) string)),
		expr.Function("concat", func(args ...any) (any, error) {
			var b strings.Builder
			for _, a := range args {
				if a != nil {
					b.WriteString(fmt.Sprint(a))
				}
			}
			return b.String(), nil
		}),
		expr.Function("coalesce", func(args ...any) (any, error) {
			for _, a := range args {
				if a != nil && a != "" {
					return a, nil
				}
			}
			return nil, nil
		}),
		expr.Function("days_until", func(args ...any) (any, error) {
			t, ok := args[0].(time.Time)
			if !ok {
				return nil, fmt.Errorf("days_until needs a time, got %T", args[0])
			}
			return int64(t.Sub(clock()).Hours() / 24), nil
		}, new(func(time.Time) int64)),
	}
}

// clockReaders are the expression helpers whose result depends on when they are
// called, not only on the record. Every helper that reads the clock must be listed.
var clockReaders = map[string]bool{"now": true, "days_until": true}

// errReadsClock marks a computed field that would change without its source changing.
var errReadsClock = errors.New("a computed field may not read the clock")

// timeIndependent rejects an expression that calls a clock-reading helper anywhere
// in its tree. A computed field is stored state: hashed, diffed and delivered as a
// change. One that reads the clock would change while the source does not, and
// would only be refreshed when something else about the record changes.
func timeIndependent(p *program) error {
	var found string
	ast.Find(p.prog.Node(), func(n ast.Node) bool {
		var name string
		switch x := n.(type) {
		case *ast.CallNode:
			if id, ok := x.Callee.(*ast.IdentifierNode); ok {
				name = id.Value
			}
		case *ast.BuiltinNode:
			name = x.Name
		}
		if clockReaders[name] && found == "" {
			found = name
		}
		return false
	})
	if found == "" {
		return nil
	}
	return fmt.Errorf("%w: it calls %s(), so its value would change with no change at the source. "+
		"Figures such as \"overdue now\" are computed by the dashboard at query time "+
		"(e.g. status open and due_at < now() in SQL); deadline events come from a timer, not from a mapping. "+
		"now() stays allowed in rules' when: conditions, which run when a change is detected", errReadsClock, found)
}

// readsAny reports whether an expression names one of the given identifiers, so a
// type error caused by a field that already failed to compile is not reported twice.
func readsAny(src string, names func(string) bool) bool {
	tree, err := parser.Parse(src)
	if err != nil {
		return false
	}
	found := false
	ast.Find(tree.Node, func(n ast.Node) bool {
		if id, ok := n.(*ast.IdentifierNode); ok && names(id.Value) {
			found = true
		}
		return false
	})
	return found
}

// vmPool reuses expression machines: one is needed per evaluation, and rows are
// evaluated by the hundred thousand.
var vmPool = sync.Pool{New: func() any { return new(vm.VM) }}

// program is a compiled expression with the names it reads, so that a runtime
// failure on a missing value can be told from a real error.
type program struct {
	src   string
	prog  *vm.Program
	names []string
}

func compileExpr(src string, env map[string]any, clock func() time.Time, asBool bool) (*program, error) {
	opts := append([]expr.Option{expr.Env(env)}, exprFuncs(clock)...)
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s", oneLine(err.Error()))
	}
	names := map[string]bool{}
	ast.Find(p.Node(), func(n ast.Node) bool {
		if id, ok := n.(*ast.IdentifierNode); ok {
			names[id.Value] = true
		}
		return false
	})
	pr := &program{src: src, prog: p}
	for n := range names {
		pr.names = append(pr.names, n)
	}
	return pr, nil
}

// run evaluates the program. A runtime error caused by a missing (nil) value the
// expression reads yields nil: "due_at < now()" on a dossier without a due date is
// unknown, not an error.
func (p *program) run(env map[string]any) (any, error) {
	machine := vmPool.Get().(*vm.VM)
	out, err := machine.Run(p.prog, env)
	vmPool.Put(machine)
	if err == nil {
		return out, nil
	}
	for _, n := range p.names {
		if v, ok := env[n]; ok && v == nil {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("%s", oneLine(err.Error()))
}

// memberNames lists the properties read from a map variable (after.status) and the
// string arguments of calls to fn (changed("status")), so typos in them are load errors.
func memberNames(p *vm.Program, vars []string, fn string) (members []string, args []string) {
	isVar := map[string]bool{}
	for _, v := range vars {
		isVar[v] = true
	}
	ast.Find(p.Node(), func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.MemberNode:
			if id, ok := x.Node.(*ast.IdentifierNode); ok && isVar[id.Value] {
				if s, ok := x.Property.(*ast.StringNode); ok {
					members = append(members, s.Value)
				}
			}
		case *ast.CallNode:
			if id, ok := x.Callee.(*ast.IdentifierNode); ok && id.Value == fn {
				for _, a := range x.Arguments {
					if s, ok := a.(*ast.StringNode); ok {
						args = append(args, s.Value)
					}
				}
			}
		}
		return false
	})
	return members, args
}

func oneLine(s string) string {
	// expr's errors carry a caret diagram on following lines; keep the first line,
	// which holds the message and the (line:column) inside the expression.
	first, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(first)
}
