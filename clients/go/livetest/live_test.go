// Package livetest tests the generated Go client against a running runctl server.
//
//	RUNCTL_GRPC_TARGET=127.0.0.1:50051 go test -v ./livetest
//
// tests/test_clients_ts_go.py starts a real server on free ports and runs this package; without
// RUNCTL_GRPC_TARGET every test is skipped.
package livetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	runctlv1 "github.com/runctl/runctl/clients/go/runctl/v1"
)

const hello = `{
  "name": "Hello",
  "nodes": [
    {"id": "start", "type": "start"},
    {"id": "greet", "type": "transform", "config": {"output": {"greeting": "Hello, {{ input.name }}!"}}},
    {"id": "end", "type": "end", "config": {"output": "{{ nodes.greet.output }}"}}
  ],
  "edges": [{"from": "start", "to": "greet"}, {"from": "greet", "to": "end"}]
}`

// hold waits at node "hold" until resumed; its end node returns the resume data.
const hold = `{
  "name": "Hold",
  "nodes": [
    {"id": "start", "type": "start"},
    {"id": "hold", "type": "wait"},
    {"id": "end", "type": "end", "config": {"output": "{{ nodes.hold.output }}"}}
  ],
  "edges": [{"from": "start", "to": "hold"}, {"from": "hold", "to": "end"}]
}`

type clients struct {
	executions runctlv1.ExecutionServiceClient
	workers    runctlv1.WorkerServiceClient
}

func connect(t *testing.T) (context.Context, clients) {
	t.Helper()
	target := os.Getenv("RUNCTL_GRPC_TARGET")
	if target == "" {
		t.Skip("RUNCTL_GRPC_TARGET is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	// Plaintext HTTP/2, as `runctl serve` listens by default. grpc-go 1.33 (go.mod: Debian 12's
	// package) predates grpc.NewClient (1.63) and credentials/insecure (1.34); with grpc-go 1.63 or
	// later write grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials())).
	conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure())
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { conn.Close() })
	return ctx, clients{runctlv1.NewExecutionServiceClient(conn), runctlv1.NewWorkerServiceClient(conn)}
}

func start(ctx context.Context, t *testing.T, c clients, document string, input map[string]interface{}) string {
	t.Helper()
	definition := &runctlv1.WorkflowDefinition{}
	if err := protojson.Unmarshal([]byte(document), definition); err != nil {
		t.Fatalf("workflow document: %v", err)
	}
	in, err := structpb.NewStruct(input)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := c.executions.StartExecution(ctx, &runctlv1.StartExecutionRequest{
		Source: &runctlv1.StartExecutionRequest_Definition{Definition: definition},
		Input:  in,
	})
	if err != nil {
		t.Fatalf("StartExecution: %v", err)
	}
	return reply.GetExecution().GetId()
}

func terminal(e *runctlv1.Execution) bool {
	switch e.GetStatus() {
	case runctlv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED, runctlv1.ExecutionStatus_EXECUTION_STATUS_ERROR,
		runctlv1.ExecutionStatus_EXECUTION_STATUS_STOPPED:
		return true
	}
	return false
}

func paused(e *runctlv1.Execution) bool { return len(e.GetPausePoints()) > 0 }

// waitFor polls GetExecution until done holds: the server drives runs, not this call.
func waitFor(ctx context.Context, t *testing.T, c clients, id string, done func(*runctlv1.Execution) bool) *runctlv1.Execution {
	t.Helper()
	for {
		reply, err := c.executions.GetExecution(ctx, &runctlv1.GetExecutionRequest{ExecutionId: id})
		if err != nil {
			t.Fatalf("GetExecution: %v", err)
		}
		if done(reply.GetExecution()) {
			return reply.GetExecution()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("run %s stuck in %s", id, reply.GetExecution().GetStatus())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func expectOutput(t *testing.T, e *runctlv1.Execution, want map[string]interface{}) {
	t.Helper()
	if e.GetStatus() != runctlv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("status %s, want COMPLETED (error %v)", e.GetStatus(), e.GetError())
	}
	if got := e.GetOutput().AsInterface(); !reflect.DeepEqual(got, want) {
		t.Fatalf("output %v, want %v", got, want)
	}
}

func TestUnaryStartAndGet(t *testing.T) {
	ctx, c := connect(t)
	id := start(ctx, t, c, hello, map[string]interface{}{"name": "Ada"})
	done := waitFor(ctx, t, c, id, terminal)
	expectOutput(t, done, map[string]interface{}{"greeting": "Hello, Ada!"})
	if done.GetWorkflowName() != "Hello" || len(done.GetNodes()) != 3 {
		t.Fatalf("unexpected run: %v", done)
	}
}

func TestGetMissingIsNotFound(t *testing.T) {
	ctx, c := connect(t)
	_, err := c.executions.GetExecution(ctx, &runctlv1.GetExecutionRequest{ExecutionId: "exec_missing"})
	if code := status.Code(err); code != codes.NotFound {
		t.Fatalf("code %s (%v), want NotFound", code, err)
	}
}

func TestResumePausePoint(t *testing.T) {
	ctx, c := connect(t)
	id := start(ctx, t, c, hold, nil)
	waiting := waitFor(ctx, t, c, id, paused)
	values, _ := structpb.NewStruct(map[string]interface{}{"ok": true})
	reply, err := c.executions.ResumePausePoint(ctx, &runctlv1.ResumePausePointRequest{
		ContextId: waiting.GetPausePoints()[0].GetContextId(),
		Values:    values,
	})
	if err != nil {
		t.Fatalf("ResumePausePoint: %v", err)
	}
	if reply.GetAction() != runctlv1.ResumeAction_RESUME_ACTION_RESUMED {
		t.Fatalf("action %s (%s), want RESUMED", reply.GetAction(), reply.GetReason())
	}
	expectOutput(t, waitFor(ctx, t, c, id, terminal), map[string]interface{}{"ok": true})
}

func TestWatchExecution(t *testing.T) {
	ctx, c := connect(t)
	id := start(ctx, t, c, hold, nil)
	waiting := waitFor(ctx, t, c, id, paused)
	stream, err := c.executions.WatchExecution(ctx, &runctlv1.WatchExecutionRequest{ExecutionId: id})
	if err != nil {
		t.Fatalf("WatchExecution: %v", err)
	}
	var kinds []string
	var events []runctlv1.EventType
	var resumed []string
	var output interface{}
	for {
		message, err := stream.Recv()
		if err != nil {
			if status.Code(err) == codes.Unimplemented {
				t.Skip("WatchExecution is UNIMPLEMENTED on this server")
			}
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Recv: %v", err)
			}
			break // the stream ended with OK after the run's last event
		}
		switch kind := message.GetKind().(type) {
		case *runctlv1.WatchExecutionResponse_Snapshot:
			kinds = append(kinds, "snapshot")
			if kind.Snapshot.GetStatus() != runctlv1.ExecutionStatus_EXECUTION_STATUS_PAUSED {
				t.Fatalf("snapshot status %s, want PAUSED", kind.Snapshot.GetStatus())
			}
			// Resume once the watch is open: what follows arrives live on the stream.
			values, _ := structpb.NewStruct(map[string]interface{}{"n": 1})
			_, err := c.executions.ResumePausePoint(ctx, &runctlv1.ResumePausePointRequest{
				ContextId: waiting.GetPausePoints()[0].GetContextId(), Values: values,
			})
			if err != nil {
				t.Fatalf("ResumePausePoint: %v", err)
			}
		case *runctlv1.WatchExecutionResponse_Events:
			kinds = append(kinds, "events")
			for _, event := range kind.Events.GetEvents() {
				events = append(events, event.GetType())
				// Typed attributes: one getter per event type, nil for the others.
				if attributes := event.GetPausePointResumedAttributes(); attributes != nil {
					resumed = append(resumed, attributes.GetContextId())
				}
				if attributes := event.GetExecutionCompletedAttributes(); attributes != nil {
					if attributes.GetStatus() != runctlv1.ExecutionStatus_EXECUTION_STATUS_COMPLETED {
						t.Fatalf("EXECUTION_COMPLETED with status %s", attributes.GetStatus())
					}
					output = attributes.GetOutput().AsInterface()
				}
			}
		case *runctlv1.WatchExecutionResponse_Heartbeat:
			kinds = append(kinds, "heartbeat")
		}
	}
	if len(kinds) == 0 || kinds[0] != "snapshot" {
		t.Fatalf("messages %v, want a snapshot first", kinds)
	}
	if len(events) == 0 || events[len(events)-1] != runctlv1.EventType_EVENT_TYPE_EXECUTION_COMPLETED {
		t.Fatalf("events %v, want EXECUTION_COMPLETED last", events)
	}
	if len(resumed) != 1 || resumed[0] != waiting.GetPausePoints()[0].GetContextId() {
		t.Fatalf("PAUSE_POINT_RESUMED context ids %v, want [%s]", resumed, waiting.GetPausePoints()[0].GetContextId())
	}
	if !reflect.DeepEqual(output, map[string]interface{}{"n": float64(1)}) {
		t.Fatalf("EXECUTION_COMPLETED output %v, want map[n:1]", output)
	}
}

func TestPollTasks(t *testing.T) {
	ctx, c := connect(t)
	unique := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	queue, worker := "go-"+unique, "go-worker-"+unique
	id := start(ctx, t, c, fmt.Sprintf(`{
	  "name": "Crunch",
	  "nodes": [
	    {"id": "start", "type": "start"},
	    {"id": "job", "type": "crunch", "queue": %q},
	    {"id": "end", "type": "end", "config": {"output": "{{ nodes.job.output }}"}}
	  ],
	  "edges": [{"from": "start", "to": "job"}, {"from": "job", "to": "end"}]
	}`, queue), nil)
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	stream, err := c.workers.PollTasks(pollCtx, &runctlv1.PollTasksRequest{WorkerId: worker, Queues: []string{queue}})
	if err != nil {
		t.Fatalf("PollTasks: %v", err)
	}
	for {
		message, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		task := message.GetTask()
		if task == nil {
			continue // an idle heartbeat
		}
		if task.GetExecutionId() != id || task.GetNodeId() != "job" || task.GetType() != "crunch" {
			t.Fatalf("unexpected task %v", task)
		}
		output, _ := structpb.NewValue(map[string]interface{}{"crunched": 42})
		_, err = c.workers.CompleteTask(ctx, &runctlv1.CompleteTaskRequest{TaskId: task.GetTaskId(), WorkerId: worker, Output: output})
		if err != nil {
			t.Fatalf("CompleteTask: %v", err)
		}
		break
	}
	stopPolling()
	expectOutput(t, waitFor(ctx, t, c, id, terminal), map[string]interface{}{"crunched": 42.0})
}
