package org.example.sandbox;

import ca.uhn.fhir.batch2.jobs.export.BulkDataExportProvider;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.LoggingInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.springframework.context.ApplicationContext;

/**
 * HAPI's REST layer over the JPA beans: one provider per resource type (CRUD, search,
 * conditional operations, $validate, Patient/$everything), the system provider (transaction
 * and batch Bundles, _history), Bulk Data $export, a CapabilityStatement describing what the JPA server supports,
 * and database-backed paging so that search `next` links keep working across requests.
 */
public class SandboxFhirServlet extends RestfulServer {

  private static final long serialVersionUID = 1L;

  /** Default and largest page of a search; `_count` chooses within this range. */
  private static final int DEFAULT_PAGE_SIZE = 20;

  private static final int MAXIMUM_PAGE_SIZE = 500;

  public SandboxFhirServlet(ApplicationContext spring) {
    super(spring.getBean(IFhirSystemDao.class).getContext());

    registerProviders(spring.getBean(ResourceProviderFactory.class).createProviders());
    // Transaction and batch Bundles (POST to the base), system-level _history, $meta, ...
    registerProvider(spring.getBean("mySystemProviderR4", JpaSystemProvider.class));
    // Bulk Data $export (system, Patient, Group/{id}) and $export-poll-status: HAPI's provider,
    // running HAPI's Batch2 export job; the files are Binary resources read at /Binary/{id}.
    registerProvider(spring.getBean(BulkDataExportProvider.class));

    setServerConformanceProvider(
        new JpaCapabilityStatementProvider(
            this,
            spring.getBean(IFhirSystemDao.class),
            spring.getBean(JpaStorageSettings.class),
            spring.getBean(ISearchParamRegistry.class),
            spring.getBean(IValidationSupport.class)));

    DatabaseBackedPagingProvider paging = spring.getBean(DatabaseBackedPagingProvider.class);
    paging.setDefaultPageSize(DEFAULT_PAGE_SIZE);
    paging.setMaximumPageSize(MAXIMUM_PAGE_SIZE);
    setPagingProvider(paging);

    // JSON unless the client asks for XML: what our adapter and tests speak.
    setDefaultResponseEncoding(EncodingEnum.JSON);
    registerInterceptor(new IfMatchPreconditionInterceptor());
    registerInterceptor(requestLog());
  }

  /** One log line per request, so a failing integration test can be matched to the server. */
  private static LoggingInterceptor requestLog() {
    LoggingInterceptor log = new LoggingInterceptor();
    log.setLoggerName("org.example.sandbox.requests");
    log.setMessageFormat(
        "${requestVerb} ${requestUrl}${requestParameters} -> ${operationType}"
            + " ${idOrResourceName} (${processingTimeMillis} ms)");
    log.setLogExceptions(true);
    log.setErrorMessageFormat(
        "${requestVerb} ${requestUrl}${requestParameters} failed: ${exceptionMessage}");
    return log;
  }
}
