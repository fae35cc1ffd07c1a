package org.example.sandbox;

import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;

/**
 * The PostgreSQL database of {@code SANDBOX_DATABASE_URL}, turned into what the JDBC driver and
 * the pool take: a JDBC URL without credentials, and the user and password apart (so that
 * neither the log nor an error message ever shows the password).
 *
 * <p>Accepted forms:
 *
 * <ul>
 *   <li>{@code postgresql://user:password@host:port/database?param=value} (also {@code
 *       postgres://} and SQLAlchemy's {@code postgresql+driver://}, such as the adapter's own
 *       {@code postgresql+psycopg://...}); user and password percent-encoded as in any URL; port
 *       5432 when absent; query parameters go to the JDBC driver as they are (pgjdbc's names);
 *   <li>{@code jdbc:postgresql://host:port/database?user=...&password=...}: handed to the driver
 *       unchanged.
 * </ul>
 */
record PostgresUrl(String jdbcUrl, String user, String password, String display) {

  static final String VARIABLE = "SANDBOX_DATABASE_URL";

  private static final int DEFAULT_PORT = 5432;

  static PostgresUrl parse(String url) {
    String text = url.strip();
    if (text.startsWith("jdbc:postgresql:")) {
      return fromJdbc(text);
    }
    int colon = text.indexOf("://");
    String scheme = colon < 0 ? "" : text.substring(0, colon);
    boolean isPostgres =
        scheme.equals("postgresql")
            || scheme.equals("postgres")
            || scheme.matches("postgresql\\+[A-Za-z0-9_]+");
    if (!isPostgres) {
      // Only a scheme that looks like one is quoted: anything else may hold the password.
      String shown = scheme.matches("[A-Za-z][A-Za-z0-9+.-]*") ? scheme : "?";
      throw invalid(
          "must start with postgresql://, postgres://, postgresql+<driver>:// or"
              + " jdbc:postgresql:// (got a URL starting with '"
              + shown
              + "')");
    }
    return fromUri(text.substring(colon + 3));
  }

  /** The part after "scheme://": [user[:password]@]host[:port]/database[?query]. */
  private static PostgresUrl fromUri(String rest) {
    URI uri;
    try {
      uri = new URI("postgresql://" + rest);
    } catch (URISyntaxException e) {
      // The message would quote the URL, password included.
      throw invalid("is not a valid URL (check the percent-encoding of the user and password)");
    }
    String host = uri.getHost();
    if (host == null || host.isEmpty()) {
      // No server-based authority: none at all, or one java.net.URI cannot split.
      throw invalid(
          rest.startsWith("/") || rest.isEmpty()
              ? "has no host name (the JDBC driver cannot use a Unix socket)"
              : "has no valid host (check the percent-encoding of the user and password)");
    }
    String path = uri.getRawPath() == null ? "" : uri.getRawPath();
    String database = decode(path.startsWith("/") ? path.substring(1) : path);
    if (database.isEmpty() || database.contains("/")) {
      throw invalid("must name one database after the host, as in postgresql://host:5432/hapi");
    }
    int port = uri.getPort() < 0 ? DEFAULT_PORT : uri.getPort();
    String where = host + ":" + port + "/" + database;
    String query = uri.getRawQuery() == null ? "" : "?" + uri.getRawQuery();
    String user = "";
    String password = "";
    String userInfo = uri.getRawUserInfo();
    if (userInfo != null) {
      int split = userInfo.indexOf(':');
      user = decode(split < 0 ? userInfo : userInfo.substring(0, split));
      password = split < 0 ? "" : decode(userInfo.substring(split + 1));
    }
    String hostPart = host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host;
    String jdbc =
        "jdbc:postgresql://"
            + hostPart
            + ":"
            + port
            + "/"
            + path.substring(path.startsWith("/") ? 1 : 0)
            + query;
    return new PostgresUrl(jdbc, user, password, "PostgreSQL at " + where);
  }

  private static PostgresUrl fromJdbc(String jdbc) {
    // Credentials, if any, are in the query; the display shows only host, port and database.
    int query = jdbc.indexOf('?');
    String withoutQuery = query < 0 ? jdbc : jdbc.substring(0, query);
    String where = withoutQuery.substring("jdbc:postgresql:".length()).replaceFirst("^//", "");
    return new PostgresUrl(jdbc, "", "", "PostgreSQL at " + where);
  }

  /** Never the password: this is what a log line or an exception may show. */
  @Override
  public String toString() {
    return display;
  }

  private static String decode(String text) {
    return URLDecoder.decode(text.replace("+", "%2B"), StandardCharsets.UTF_8);
  }

  private static IllegalArgumentException invalid(String problem) {
    return new IllegalArgumentException(VARIABLE + " " + problem);
  }
}
