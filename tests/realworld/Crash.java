// Run by realworld.py with the JDK's source launcher (java Crash.java MODE PORT).
//   serve PORT      threads that wait, sleep and serve a line echo on a
//                   ServerSocketChannel (which loads libnio and libnet and their
//                   handler for the JDK's I/O interrupt signal); prints nothing,
//                   runs until killed
//   interrupt PORT  one thread blocks in ServerSocketChannel.accept(), another
//                   closes the channel; exit 0 if accept() ends with
//                   AsynchronousCloseException within 10 s
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

public class Crash {
  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    if (args[0].equals("serve")) {
      serve(port);
    } else {
      System.exit(interrupt(port));
    }
  }

  static void serve(int port) throws IOException {
    Object lock = new Object();
    for (int i = 0; i < 3; i++) {
      Thread t = new Thread(() -> {
        synchronized (lock) {
          try {
            while (true) lock.wait();
          } catch (InterruptedException e) {
            // ends the thread
          }
        }
      }, "waiter-" + i);
      t.setDaemon(true);
      t.start();
    }
    Thread sleeper = new Thread(() -> {
      try {
        while (true) Thread.sleep(10);
      } catch (InterruptedException e) {
        // ends the thread
      }
    }, "sleeper");
    sleeper.setDaemon(true);
    sleeper.start();
    ServerSocketChannel server = ServerSocketChannel.open();
    server.bind(new InetSocketAddress("127.0.0.1", port));
    while (true) {
      SocketChannel c = server.accept();
      Thread t = new Thread(() -> echo(c), "conn");
      t.setDaemon(true);
      t.start();
    }
  }

  static void echo(SocketChannel c) {
    try (BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(c), StandardCharsets.UTF_8));
         OutputStream out = Channels.newOutputStream(c)) {
      String line;
      while ((line = in.readLine()) != null) out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
    } catch (IOException e) {
      // the client went away
    }
  }

  static boolean inAccept(Thread t) {
    for (StackTraceElement e : t.getStackTrace())
      if (e.getClassName().equals("sun.nio.ch.Net") && e.getMethodName().equals("accept")) return true;
    return false;
  }

  static int interrupt(int port) throws Exception {
    ServerSocketChannel server = ServerSocketChannel.open();
    server.bind(new InetSocketAddress("127.0.0.1", port));
    CompletableFuture<Throwable> outcome = new CompletableFuture<>();
    Thread acceptor = new Thread(() -> {
      try {
        server.accept();
        outcome.complete(null);
      } catch (Throwable e) {
        outcome.complete(e);
      }
    }, "acceptor");
    acceptor.setDaemon(true);
    acceptor.start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!inAccept(acceptor)) {
      if (System.nanoTime() > deadline) {
        System.out.println("the acceptor never reached accept()");
        return 2;
      }
      Thread.sleep(5);
    }
    long closed = System.nanoTime();
    server.close();
    Throwable e;
    try {
      e = outcome.get(10, TimeUnit.SECONDS);
    } catch (java.util.concurrent.TimeoutException timeout) {
      System.out.println("accept() still blocked 10 s after close()");
      return 1;
    }
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - closed);
    if (e instanceof AsynchronousCloseException) {
      System.out.println("accept() ended with " + e.getClass().getSimpleName() + " " + ms + " ms after close()");
      return 0;
    }
    System.out.println("accept() ended with " + e + " after close()");
    return 1;
  }
}
