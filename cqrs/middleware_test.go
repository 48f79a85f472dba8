package cqrs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cqrs"
)

// recorder collects the steps of a dispatch.
type recorder struct {
	mu    sync.Mutex
	steps []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, s)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.steps...)
}

func (r *recorder) middleware(name string) cqrs.Middleware {
	return func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg cqrs.Message) (any, error) {
			r.add(name + ">")
			res, err := next(ctx, msg)
			r.add("<" + name)
			return res, err
		}
	}
}

func TestMiddlewareOrderFirstIsOutermost(t *testing.T) {
	t.Parallel()
	var rec recorder
	bus := newBus(t, &cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{rec.middleware("a"), rec.middleware("b"), rec.middleware("c")},
		QueryMiddleware:   []cqrs.Middleware{rec.middleware("q")},
	})
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, RegisterUser) (UserID, error) {
		rec.add("handler")
		return "id", nil
	}))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) {
		rec.add("query")
		return UserView{}, nil
	}))

	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.NoError(t, err)
	require.Equal(t, UserID("id"), id)
	require.Equal(t, []string{"a>", "b>", "c>", "handler", "<c", "<b", "<a"}, rec.get())

	rec = recorder{}
	_, err = cqrs.Ask[UserView](context.Background(), bus, GetUser{})
	require.NoError(t, err)
	require.Equal(t, []string{"q>", "query", "<q"}, rec.get(), "query middleware only, no command middleware")
}

func TestMiddlewareSeesMessage(t *testing.T) {
	t.Parallel()
	var cmd, query cqrs.Message
	bus := newBus(t, &cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{spy(&cmd)},
		QueryMiddleware:   []cqrs.Middleware{spy(&query)},
	})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (struct{}, error) { return struct{}{}, nil }))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) { return UserView{}, nil }))

	_, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "ada"})
	require.NoError(t, err)
	require.Equal(t, cqrs.Message{Kind: cqrs.KindCommand, Name: "user.register", Payload: RegisterUser{Email: "ada"}}, cmd)

	require.NoError(t, cqrs.Exec(context.Background(), bus, VerifyEmail{ID: "u1"}))
	require.Equal(t, cqrs.Message{Kind: cqrs.KindCommand, Name: "cqrs_test.VerifyEmail", Payload: VerifyEmail{ID: "u1"}}, cmd)

	_, err = cqrs.Ask[UserView](context.Background(), bus, GetUser{ID: "u1"})
	require.NoError(t, err)
	require.Equal(t, cqrs.Message{Kind: cqrs.KindQuery, Name: "user.get", Payload: GetUser{ID: "u1"}}, query)
	require.Equal(t, "command", cqrs.KindCommand.String())
	require.Equal(t, "query", cqrs.KindQuery.String())
}

func TestMiddlewareCanShortCircuitAndRewrite(t *testing.T) {
	t.Parallel()
	denied := errors.New("denied")
	deny := func(cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(context.Context, cqrs.Message) (any, error) { return nil, denied }
	}
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{deny}})
	called := false
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, RegisterUser) (UserID, error) {
		called = true
		return "id", nil
	}))
	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.Same(t, denied, err)
	require.Empty(t, id, "a nil result becomes the zero value")
	require.False(t, called)

	rewrite := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg cqrs.Message) (any, error) {
			msg.Payload = RegisterUser{Email: strings.ToLower(msg.Payload.(RegisterUser).Email)}
			return next(ctx, msg)
		}
	}
	bus = newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{rewrite}})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	id, err = cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "ADA"})
	require.NoError(t, err)
	require.Equal(t, UserID("id-ada"), id)
}

func TestMiddlewareBreakingTypesGivesErrors(t *testing.T) {
	t.Parallel()
	wrongResult := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg cqrs.Message) (any, error) {
			_, err := next(ctx, msg)
			return 42, err
		}
	}
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{wrongResult}})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	_, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.ErrorIs(t, err, cqrs.ErrResultType)
	require.EqualError(t, err, "cqrs: result type mismatch for command user.register: a middleware returned int, want cqrs_test.UserID")

	wrongPayload := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg cqrs.Message) (any, error) {
			msg.Payload = "not a command"
			return next(ctx, msg)
		}
	}
	bus = newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{wrongPayload}})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	_, err = cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.EqualError(t, err, "cqrs: command user.register: a middleware passed a payload of type string, want cqrs_test.RegisterUser")
}

func TestValidation(t *testing.T) {
	t.Parallel()
	bus := newBus(t, &cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{cqrs.Validation()},
		QueryMiddleware:   []cqrs.Middleware{cqrs.Validation()},
	})
	calls := 0
	require.NoError(t, cqrs.HandleCommand(bus, func(_ context.Context, c RegisterUser) (UserID, error) {
		calls++
		return UserID(c.Email), nil
	}))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) { return UserView{ID: "u"}, nil }))

	_, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.ErrorIs(t, err, cqrs.ErrValidation)
	var fe *FieldError
	require.ErrorAs(t, err, &fe, "the error Validate returned is reachable")
	require.Equal(t, "email", fe.Field)
	var ve *cqrs.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, cqrs.KindCommand, ve.Kind)
	require.Equal(t, "user.register", ve.Name)
	require.EqualError(t, err, "cqrs: invalid command user.register: email is required")
	require.Zero(t, calls, "the handler does not run")

	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "ada"})
	require.NoError(t, err)
	require.Equal(t, UserID("ada"), id)
	require.Equal(t, 1, calls)

	view, err := cqrs.Ask[UserView](context.Background(), bus, GetUser{})
	require.NoError(t, err, "a payload without Validate passes")
	require.Equal(t, UserID("u"), view.ID)
}

func TestRecover(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Recover()}})
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, RegisterUser) (UserID, error) { panic("boom") }))
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (int, error) { panic(cause) }))

	var id UserID
	var err error
	require.NotPanics(t, func() { id, err = cqrs.Send[UserID](context.Background(), bus, RegisterUser{}) })
	require.Empty(t, id)
	require.ErrorIs(t, err, cqrs.ErrPanic)
	var pe *cqrs.PanicError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "boom", pe.Value)
	require.Equal(t, "user.register", pe.Name)
	require.Contains(t, string(pe.Stack), "middleware_test.go", "the stack points at the panicking code")
	require.EqualError(t, err, "cqrs: command user.register panicked: boom")

	err = cqrs.Exec(context.Background(), bus, VerifyEmail{})
	require.ErrorIs(t, err, cqrs.ErrPanic)
	require.ErrorIs(t, err, cause, "a panic with an error unwraps to it")
}

func TestLogging(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := newBus(t, &cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger), cqrs.Validation()},
		QueryMiddleware:   []cqrs.Middleware{cqrs.Logging(logger)},
	})
	boom := errors.New("boom")
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) { return UserView{}, boom }))

	_, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "a"})
	require.NoError(t, err)
	_, err = cqrs.Send[UserID](context.Background(), bus, RegisterUser{})
	require.Error(t, err)
	_, err = cqrs.Ask[UserView](context.Background(), bus, GetUser{})
	require.Error(t, err)

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		require.Contains(t, m, "duration")
		delete(m, "time")
		delete(m, "duration")
		lines = append(lines, m)
	}
	require.Equal(t, []map[string]any{
		{"level": "DEBUG", "msg": "cqrs: command handled", "kind": "command", "name": "user.register"},
		{"level": "WARN", "msg": "cqrs: command failed", "kind": "command", "name": "user.register", "error": "cqrs: invalid command user.register: email is required"},
		{"level": "ERROR", "msg": "cqrs: query failed", "kind": "query", "name": "user.get", "error": "boom"},
	}, lines)
}

func TestLoggingDisabledLevelLogsNothing(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger)}})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "a"})
	require.NoError(t, err)
	require.Equal(t, UserID("id-a"), id)
	require.Empty(t, buf.String(), "success is logged at debug")
}

type txKey struct{}

func TestAround(t *testing.T) {
	t.Parallel()
	var rec recorder
	commitErr := errors.New("commit failed")
	failCommit := false
	tx := cqrs.Around(func(ctx context.Context, msg cqrs.Message) (context.Context, func(error) error, error) {
		if msg.Payload.(VerifyEmail).ID == "no-tx" {
			return nil, nil, errors.New("cannot begin")
		}
		rec.add("begin " + msg.Name)
		return context.WithValue(ctx, txKey{}, "tx1"), func(err error) error {
			if err != nil {
				rec.add("rollback: " + err.Error())
				return err
			}
			if failCommit {
				rec.add("commit failed")
				return commitErr
			}
			rec.add("commit")
			return nil
		}, nil
	})
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{tx}})
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, c VerifyEmail) (string, error) {
		rec.add("handler in " + ctx.Value(txKey{}).(string))
		if c.ID == "bad" {
			return "", errors.New("bad id")
		}
		return "ok", nil
	}))

	res, err := cqrs.Send[string](context.Background(), bus, VerifyEmail{ID: "u1"})
	require.NoError(t, err)
	require.Equal(t, "ok", res)
	require.Equal(t, []string{"begin cqrs_test.VerifyEmail", "handler in tx1", "commit"}, rec.get())

	rec = recorder{}
	_, err = cqrs.Send[string](context.Background(), bus, VerifyEmail{ID: "bad"})
	require.EqualError(t, err, "bad id")
	require.Equal(t, []string{"begin cqrs_test.VerifyEmail", "handler in tx1", "rollback: bad id"}, rec.get())

	rec = recorder{}
	failCommit = true
	_, err = cqrs.Send[string](context.Background(), bus, VerifyEmail{ID: "u1"})
	require.Same(t, commitErr, err, "finish decides the error the caller sees")

	rec = recorder{}
	_, err = cqrs.Send[string](context.Background(), bus, VerifyEmail{ID: "no-tx"})
	require.EqualError(t, err, "cannot begin")
	require.Empty(t, rec.get(), "the handler does not run when begin fails")
}

func TestAroundFinishesOnPanic(t *testing.T) {
	t.Parallel()
	var finished error
	tx := cqrs.Around(func(ctx context.Context, _ cqrs.Message) (context.Context, func(error) error, error) {
		return ctx, func(err error) error { finished = err; return err }, nil
	})
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Recover(), tx}})
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (int, error) { panic("boom") }))

	_, err := cqrs.Send[int](context.Background(), bus, VerifyEmail{})
	require.ErrorIs(t, finished, cqrs.ErrPanic, "finish saw the panic and could roll back")
	var pe *cqrs.PanicError
	require.ErrorAs(t, err, &pe, "the panic went on to Recover")
	require.Equal(t, "boom", pe.Value, "with its original value")
}

func TestAroundWithoutFinish(t *testing.T) {
	t.Parallel()
	type key struct{}
	trace := cqrs.Around(func(ctx context.Context, _ cqrs.Message) (context.Context, func(error) error, error) {
		return context.WithValue(ctx, key{}, "span"), nil, nil
	})
	bus := newBus(t, &cqrs.Config{QueryMiddleware: []cqrs.Middleware{trace}})
	require.NoError(t, cqrs.HandleQuery(bus, func(ctx context.Context, _ GetUser) (string, error) {
		return ctx.Value(key{}).(string), nil
	}))
	s, err := cqrs.Ask[string](context.Background(), bus, GetUser{})
	require.NoError(t, err)
	require.Equal(t, "span", s)
}
