package org.example.sandbox;

import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.util.Map;
import javax.sql.DataSource;
import org.h2.jdbcx.JdbcConnectionPool;

/**
 * The database the sandbox keeps its data in, chosen at start: H2 by default (in memory, or in
 * files under the system property {@code sandbox.dataDir}), PostgreSQL when the environment
 * variable {@code SANDBOX_DATABASE_URL} is set. Each comes with HAPI's Hibernate dialect for it
 * and the JPA settings that differ between them; closing it closes the connection pool.
 */
final class SandboxDatabase implements AutoCloseable {

  static final String POOL_SIZE_VARIABLE = "SANDBOX_DATABASE_POOL_SIZE";

  /** HAPI's JPA server starter runs HikariCP with this many connections by default. */
  private static final int DEFAULT_POSTGRES_POOL_SIZE = 10;

  private static final int MAXIMUM_POOL_SIZE = 200;

  /** H2: HAPI runs searches on background threads next to the request's own transaction. */
  private static final int H2_POOL_SIZE = 20;

  /** Statement batching, as HAPI's JPA server starter configures Hibernate by default. */
  private static final String JDBC_BATCH_SIZE = "20";

  private final DataSource dataSource;
  private final Map<String, String> jpaProperties;
  private final String description;
  private final Runnable closer;

  private SandboxDatabase(
      DataSource dataSource, Map<String, String> jpaProperties, String description, Runnable closer) {
    this.dataSource = dataSource;
    this.jpaProperties = jpaProperties;
    this.description = description;
    this.closer = closer;
  }

  /** From the environment of this JVM; an invalid setting is an error naming it. */
  static SandboxDatabase fromEnvironment() {
    String url = System.getenv(PostgresUrl.VARIABLE);
    String dataDir = System.getProperty("sandbox.dataDir", "");
    if (url == null || url.isBlank()) {
      return h2(dataDir);
    }
    if (!dataDir.isEmpty()) {
      throw new IllegalArgumentException(
          PostgresUrl.VARIABLE + " and SANDBOX_DATA_DIR are both set: choose one database");
    }
    int poolSize =
        EnvironmentSetting.wholeNumber(
            POOL_SIZE_VARIABLE, DEFAULT_POSTGRES_POOL_SIZE, 1, MAXIMUM_POOL_SIZE);
    return postgres(PostgresUrl.parse(url), poolSize);
  }

  /**
   * A fresh in-memory H2 database per start by default: tests never see a previous run's data,
   * and there is no file to clean up. DB_CLOSE_DELAY=-1 keeps it while the pool has no open
   * connection. With a data directory the database is a file there instead, kept across a stop
   * and a start (for tests of an EHR that goes down and comes back).
   */
  static SandboxDatabase h2(String dataDir) {
    String url =
        dataDir.isEmpty()
            ? "jdbc:h2:mem:sandbox;DB_CLOSE_DELAY=-1"
            : "jdbc:h2:file:" + dataDir + "/sandbox";
    JdbcConnectionPool pool = JdbcConnectionPool.create(url, "sa", "");
    pool.setMaxConnections(H2_POOL_SIZE);
    String where = dataDir.isEmpty() ? "in memory" : "in files under " + dataDir;
    return new SandboxDatabase(
        pool,
        Map.of("hibernate.dialect", HapiFhirH2Dialect.class.getName()),
        "H2 " + where,
        pool::dispose);
  }

  /**
   * PostgreSQL through HikariCP, the pool HAPI's JPA server starter uses, with HAPI's PostgreSQL
   * dialect. The pool connects at once, so an unreachable or refusing server fails the start
   * with the driver's reason instead of the first request.
   */
  static SandboxDatabase postgres(PostgresUrl url, int poolSize) {
    HikariConfig config = new HikariConfig();
    config.setPoolName("sandbox-postgres");
    config.setJdbcUrl(url.jdbcUrl());
    if (!url.user().isEmpty()) {
      config.setUsername(url.user());
    }
    if (!url.password().isEmpty()) {
      config.setPassword(url.password());
    }
    config.setMaximumPoolSize(poolSize);
    HikariDataSource pool = new HikariDataSource(config);
    return new SandboxDatabase(
        pool,
        Map.of(
            "hibernate.dialect", HapiFhirPostgresDialect.class.getName(),
            "hibernate.jdbc.batch_size", JDBC_BATCH_SIZE,
            // PostgreSQL's notices ("constraint ... does not exist, skipping", ~25 when the
            // schema is created) are not problems; errors are still logged.
            "hibernate.jdbc.log.warnings", "false"),
        url + " (pool of " + poolSize + ")",
        pool::close);
  }

  DataSource dataSource() {
    return dataSource;
  }

  /** Hibernate settings that depend on the database (the dialect first of all). */
  Map<String, String> jpaProperties() {
    return jpaProperties;
  }

  /** For the log: which database, never a password. */
  String description() {
    return description;
  }

  @Override
  public void close() {
    closer.run();
  }
}
