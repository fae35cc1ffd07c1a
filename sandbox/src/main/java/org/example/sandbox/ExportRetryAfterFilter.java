package org.example.sandbox;

import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpFilter;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;
import java.io.IOException;

/**
 * Sets the {@code Retry-After} of a bulk export status answer ({@code $export-poll-status}, 202
 * while the job runs) to a chosen number of seconds. HAPI always answers 120 s, whatever the
 * job's size: a client that honours it, as the Bulk Data IG asks, would wait two minutes for an
 * export that takes seconds here. Everything else about the answer stays HAPI's.
 */
public class ExportRetryAfterFilter extends HttpFilter {

  private static final long serialVersionUID = 1L;

  static final String VARIABLE = "SANDBOX_EXPORT_RETRY_AFTER";

  static final int DEFAULT_SECONDS = 2;

  private static final int MAXIMUM_SECONDS = 3600;

  private static final String POLL_STATUS = "/$export-poll-status";

  private final String seconds;

  public ExportRetryAfterFilter(int seconds) {
    this.seconds = Integer.toString(seconds);
  }

  /** From the environment; an invalid value is an error naming the variable. */
  static int secondsFromEnvironment() {
    return EnvironmentSetting.wholeNumber(VARIABLE, DEFAULT_SECONDS, 0, MAXIMUM_SECONDS);
  }

  @Override
  protected void doFilter(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws IOException, ServletException {
    // The path info is decoded: a client that sends %24export-poll-status is matched too.
    boolean isPollStatus = POLL_STATUS.equals(request.getPathInfo());
    chain.doFilter(request, isPollStatus ? new RetryAfter(response, seconds) : response);
  }

  /** Replaces any Retry-After the provider sets; passes every other header through. */
  private static final class RetryAfter extends HttpServletResponseWrapper {

    private final String seconds;

    RetryAfter(HttpServletResponse response, String seconds) {
      super(response);
      this.seconds = seconds;
    }

    private String value(String name, String value) {
      return "Retry-After".equalsIgnoreCase(name) ? seconds : value;
    }

    @Override
    public void setHeader(String name, String value) {
      super.setHeader(name, value(name, value));
    }

    @Override
    public void addHeader(String name, String value) {
      // set, not add: HAPI's value must not stay beside ours.
      if ("Retry-After".equalsIgnoreCase(name)) {
        super.setHeader(name, seconds);
      } else {
        super.addHeader(name, value);
      }
    }

    @Override
    public void setIntHeader(String name, int value) {
      setHeader(name, Integer.toString(value));
    }

    @Override
    public void addIntHeader(String name, int value) {
      addHeader(name, Integer.toString(value));
    }
  }
}
