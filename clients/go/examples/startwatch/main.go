// Command startwatch starts a run of an inline workflow definition and watches it until it ends.
//
//	RUNCTL_GRPC_TARGET=127.0.0.1:50051 go run ./examples/startwatch [workflow.json]
//
// Without an argument it runs a small inline "Hello" workflow (with a one-second delay, so there
// is something to watch); with one, the JSON workflow document in that file, sent inline.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	runctlv1 "github.com/runctl/runctl/clients/go/runctl/v1"
)

const hello = `{
  "name": "Hello",
  "nodes": [
    {"id": "start", "type": "start"},
    {"id": "greet", "type": "transform", "config": {"output": {"greeting": "Hello, {{ input.name }}!"}}},
    {"id": "nap", "type": "delay", "config": {"seconds": 1}},
    {"id": "end", "type": "end", "config": {"output": "{{ nodes.greet.output }}"}}
  ],
  "edges": [{"from": "start", "to": "greet"}, {"from": "greet", "to": "nap"}, {"from": "nap", "to": "end"}]
}`

func main() {
	target := os.Getenv("RUNCTL_GRPC_TARGET")
	if target == "" {
		target = "127.0.0.1:50051"
	}
	document := []byte(hello)
	if len(os.Args) > 1 {
		var err error
		if document, err = os.ReadFile(os.Args[1]); err != nil {
			log.Fatal(err)
		}
	}
	definition := &runctlv1.WorkflowDefinition{}
	if err := protojson.Unmarshal(document, definition); err != nil {
		log.Fatalf("workflow document: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Plaintext HTTP/2, as `runctl serve` listens by default. grpc-go 1.33 (go.mod: Debian 12's
	// package) predates grpc.NewClient (1.63) and credentials/insecure (1.34); with grpc-go 1.63 or
	// later write grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials())).
	conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	executions := runctlv1.NewExecutionServiceClient(conn)

	input, _ := structpb.NewStruct(map[string]interface{}{"name": "Ada"})
	started, err := executions.StartExecution(ctx, &runctlv1.StartExecutionRequest{
		Source: &runctlv1.StartExecutionRequest_Definition{Definition: definition},
		Input:  input,
	})
	if err != nil {
		log.Fatalf("StartExecution: %v", err)
	}
	id := started.GetExecution().GetId()
	fmt.Println("started", id)

	// A snapshot first, then the run's events as they commit; the stream ends after the event
	// that finished the run. A watcher that reconnects passes the last cursor as AfterSequence.
	stream, err := executions.WatchExecution(ctx, &runctlv1.WatchExecutionRequest{ExecutionId: id})
	if err != nil {
		log.Fatalf("WatchExecution: %v", err)
	}
	for {
		message, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatalf("WatchExecution: %v", err)
		}
		switch kind := message.GetKind().(type) {
		case *runctlv1.WatchExecutionResponse_Snapshot:
			fmt.Printf("snapshot %s (cursor %d)\n", kind.Snapshot.GetStatus(), message.GetCursor())
		case *runctlv1.WatchExecutionResponse_Events:
			for _, event := range kind.Events.GetEvents() {
				// Each event type has its own attributes message: a completed node carries its output.
				detail := ""
				if completed := event.GetNodeCompletedAttributes(); completed != nil {
					output, _ := protojson.Marshal(completed.GetOutput())
					detail = " " + string(output)
				}
				fmt.Printf("#%d %s %s%s\n", event.GetSequence(), event.GetType(), event.GetNodeId(), detail)
			}
		}
	}

	done, err := executions.GetExecution(ctx, &runctlv1.GetExecutionRequest{ExecutionId: id})
	if err != nil {
		log.Fatalf("GetExecution: %v", err)
	}
	output, _ := protojson.Marshal(done.GetExecution().GetOutput())
	fmt.Printf("finished %s, output %s\n", done.GetExecution().GetStatus(), output)
}
