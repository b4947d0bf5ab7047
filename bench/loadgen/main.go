// Command loadgen is bench/replicas.py's load client: it keeps -concurrency StartExecution calls in
// flight, round robin over -targets, until -runs runs are started, and reports how many went to each
// target and the CPU it spent. A compiled client takes a small share of the cores it shares with the
// replicas and PostgreSQL, so the benchmark measures the servers rather than its own calls.
//
// Protocol on stdin/stdout: after connecting it prints "ready"; it starts on a line from stdin and,
// when every call has been answered, prints one JSON object: {"starts": [...], "cpu_seconds": s},
// the CPU it spent from the start to the last answer.
// A failed call ends it with the error on stderr and exit status 1.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	runctlv1 "github.com/runctl/runctl/clients/go/runctl/v1"
)

func main() {
	targets := flag.String("targets", "", "comma-separated host:port of the replicas")
	workflowID := flag.String("workflow", "", "the workflow to start")
	runs := flag.Int("runs", 1000, "runs to start")
	concurrency := flag.Int("concurrency", 64, "calls in flight")
	flag.Parse()
	addresses := strings.Split(*targets, ",")
	if *targets == "" || *workflowID == "" {
		fail("-targets and -workflow are required")
	}

	clients := make([]runctlv1.ExecutionServiceClient, len(addresses))
	for i, address := range addresses {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		// grpc-go 1.33 (Debian's, which builds offline) predates grpc.NewClient and credentials/insecure.
		conn, err := grpc.DialContext(ctx, address, grpc.WithInsecure(), grpc.WithBlock())
		cancel()
		if err != nil {
			fail(fmt.Sprintf("connect %s: %v", address, err))
		}
		defer conn.Close()
		clients[i] = runctlv1.NewExecutionServiceClient(conn)
	}
	requests := make([]*runctlv1.StartExecutionRequest, *runs)
	for n := range requests {
		input, _ := structpb.NewStruct(map[string]interface{}{"n": float64(n)})
		requests[n] = &runctlv1.StartExecutionRequest{
			Source: &runctlv1.StartExecutionRequest_WorkflowId{WorkflowId: *workflowID},
			Input:  input,
		}
	}

	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail("stdin closed before the start")
	}

	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	var next int64 = -1
	starts := make([]int64, len(clients))
	var wait sync.WaitGroup
	for worker := 0; worker < *concurrency && worker < *runs; worker++ {
		wait.Add(1)
		go func() {
			defer wait.Done()
			for {
				n := int(atomic.AddInt64(&next, 1))
				if n >= *runs {
					return
				}
				target := n % len(clients)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				_, err := clients[target].StartExecution(ctx, requests[n])
				cancel()
				if err != nil {
					fail(fmt.Sprintf("StartExecution on %s: %v", addresses[target], err))
				}
				atomic.AddInt64(&starts[target], 1)
			}
		}()
	}
	wait.Wait()

	var after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	report, _ := json.Marshal(map[string]interface{}{
		"starts":      starts,
		"cpu_seconds": cpuSeconds(after) - cpuSeconds(before),
	})
	fmt.Println(string(report))
}

func cpuSeconds(usage syscall.Rusage) float64 {
	seconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return seconds(usage.Utime) + seconds(usage.Stime)
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "loadgen:", message)
	os.Exit(1)
}
