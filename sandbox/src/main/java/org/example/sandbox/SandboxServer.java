package org.example.sandbox;

import jakarta.servlet.DispatcherType;
import java.util.EnumSet;
import org.eclipse.jetty.ee10.servlet.FilterHolder;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * Starts the sandbox: the Spring context of the HAPI JPA server ({@link SandboxConfig}), then
 * embedded Jetty serving {@link SandboxFhirServlet} at http://HOST:PORT/fhir. Jetty opens its
 * port only once the context is up, so an answering /metadata means the server is ready.
 *
 * <p>Configured by system properties: {@code sandbox.host} (default 127.0.0.1, loopback only)
 * and {@code sandbox.port} (default 8090); and by environment variables: {@code
 * SANDBOX_DATABASE_URL} (see {@link SandboxDatabase}; in the environment, not on the command
 * line, where any local user could read its password) and {@code SANDBOX_EXPORT_RETRY_AFTER}
 * (see {@link ExportRetryAfterFilter}).
 */
public final class SandboxServer {

  private static final Logger LOG = LoggerFactory.getLogger(SandboxServer.class);

  private SandboxServer() {}

  public static void main(String[] args) {
    try {
      run();
    } catch (Exception e) {
      // HAPI's scheduler threads would keep a half-started JVM alive: exit, so that
      // sandbox/start sees the failure (e.g. port in use) at once.
      LOG.error("Sandbox failed to start", e);
      // Last, so that the lines sandbox/start shows end with the reason, not stack frames.
      LOG.error("Sandbox failed to start: {}", rootCause(e));
      System.exit(1);
    }
  }

  /**
   * The innermost cause, with the one that wraps it unless that is Spring's (whose messages
   * repeat the whole chain): "PSQLException: Connection to host:5432 refused ... (ConnectException:
   * Connection refused)".
   */
  private static String rootCause(Throwable error) {
    Throwable wrapper = null;
    Throwable cause = error;
    while (cause.getCause() != null && cause.getCause() != cause) {
      wrapper = cause;
      cause = cause.getCause();
    }
    String root = cause.getClass().getSimpleName() + ": " + cause.getMessage();
    if (wrapper == null || wrapper.getClass().getName().startsWith("org.springframework.")) {
      return root;
    }
    return wrapper.getClass().getSimpleName() + ": " + wrapper.getMessage() + " (" + root + ")";
  }

  private static void run() throws Exception {
    long started = System.nanoTime();
    String host = System.getProperty("sandbox.host", "127.0.0.1");
    int port = Integer.parseInt(System.getProperty("sandbox.port", "8090"));
    // Checked before the slow part, so that a bad setting fails the start at once.
    int retryAfterSeconds = ExportRetryAfterFilter.secondsFromEnvironment();

    AnnotationConfigApplicationContext spring =
        new AnnotationConfigApplicationContext(SandboxConfig.class);

    // A bounded pool: the tests send a handful of concurrent requests at most.
    Server jetty = new Server(new QueuedThreadPool(50, 4));
    ServerConnector connector = new ServerConnector(jetty);
    connector.setHost(host);
    connector.setPort(port);
    jetty.addConnector(connector);
    ServletContextHandler context = new ServletContextHandler("/");
    context.addServlet(new ServletHolder("fhir", new SandboxFhirServlet(spring)), "/fhir/*");
    context.addFilter(
        new FilterHolder(new ExportRetryAfterFilter(retryAfterSeconds)),
        "/fhir/*",
        EnumSet.of(DispatcherType.REQUEST));
    jetty.setHandler(context);

    // One hook, in order: stop taking requests, then close the JPA context (and H2).
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  LOG.info("Sandbox stopping");
                  try {
                    jetty.stop();
                  } catch (Exception e) {
                    LOG.warn("Jetty did not stop cleanly", e);
                  }
                  spring.close();
                },
                "sandbox-shutdown"));

    jetty.start();
    LOG.info(
        "Sandbox ready at http://{}:{}/fhir after {} s",
        host,
        port,
        String.format("%.1f", (System.nanoTime() - started) / 1e9));
    jetty.join();
  }
}
