package org.example.sandbox;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.batch2.maintenance.JobMaintenanceServiceImpl;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.DatabaseBinaryContentStorageSvcImpl;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import jakarta.persistence.EntityManagerFactory;
import java.util.Properties;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.config.BeanPostProcessor;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * The Spring context of the sandbox: HAPI's own R4 JPA server configuration plus the few beans
 * HAPI leaves to the application (database, JPA plumbing, storage settings, binary storage).
 * HAPI's own configuration already holds the Bulk Data {@code $export} provider and its Batch2
 * job; {@link SandboxFhirServlet} serves it.
 */
@Configuration
@Import({
  JpaR4Config.class,
  HapiJpaConfig.class,
  // Batch2 runs HAPI's background jobs (terminology, reindex, $delete-expunge, ...).
  JpaBatch2Config.class,
  Batch2JobsConfig.class,
  // In-process message channels (LinkedBlockingQueue) that Batch2 sends its work through.
  SubscriptionChannelConfig.class,
  // The thread pools of transaction processing.
  ThreadPoolFactoryConfig.class
})
public class SandboxConfig {

  private static final Logger LOG = LoggerFactory.getLogger(SandboxConfig.class);

  /** Search results expire after this long; paging links of a test session stay valid. */
  private static final long SEARCH_RESULTS_EXPIRE_MILLIS = 30 * 60 * 1000L;

  private static final long BATCH2_MAINTENANCE_MILLIS = 2_000L;

  /** H2 or PostgreSQL (see {@link SandboxDatabase}); closed after the JPA layer above it. */
  @Bean
  public SandboxDatabase database() {
    SandboxDatabase database = SandboxDatabase.fromEnvironment();
    LOG.info("Sandbox database: {}", database.description());
    return database;
  }

  // Closed by the SandboxDatabase bean, which owns the pool.
  @Bean(destroyMethod = "")
  public DataSource dataSource(SandboxDatabase database) {
    return database.dataSource();
  }

  @Bean
  public JpaStorageSettings storageSettings() {
    JpaStorageSettings settings = new JpaStorageSettings();
    // So that tests can clean up: conditional deletes of several matches, $expunge.
    settings.setAllowMultipleDelete(true);
    settings.setExpungeEnabled(true);
    settings.setDeleteExpungeEnabled(true);
    // Mapped resources may point at absolute URLs of other systems.
    settings.setAllowExternalReferences(true);
    // HAPI reuses a cached result for an identical search for 60 s by default, so a search
    // right after a write can miss that write: wrong for tests, which search after writing.
    settings.setReuseCachedSearchResultsForMillis(null);
    settings.setExpireSearchResultsAfterMillis(SEARCH_RESULTS_EXPIRE_MILLIS);
    // No Hibernate Search / Lucene: searches run on the database indexes only.
    settings.setAdvancedHSearchIndexing(false);
    settings.setHibernateSearchIndexSearchParams(false);
    settings.setStoreResourceInHSearchIndex(false);
    // Bulk export: by default HAPI answers a kick-off identical to an earlier one with that
    // job's files, which miss whatever was written since; every kick-off runs a new export.
    settings.setEnableBulkExportJobReuse(false);
    // A Batch2 job (bulk export among them) moves to its next step when a maintenance pass
    // runs, once a minute by default: an export of three resources took 3.5 minutes. Fast
    // tracking runs that pass as soon as a step's only work chunk is done (see also
    // batch2MaintenancePace).
    settings.setJobFastTrackingEnabled(true);
    return settings;
  }

  /**
   * Batch2's maintenance pass, which starts a queued job and moves a job of many work chunks to
   * its next step, runs every {@value #BATCH2_MAINTENANCE_MILLIS} ms instead of once a minute:
   * with HAPI's pace, a bulk export waited up to a minute before it even began. Set before HAPI's
   * scheduler registers the pass (when the context has been refreshed).
   */
  @Bean
  public static BeanPostProcessor batch2MaintenancePace() {
    return new BeanPostProcessor() {
      @Override
      public Object postProcessBeforeInitialization(Object bean, String name) {
        if (bean instanceof JobMaintenanceServiceImpl maintenance) {
          maintenance.setScheduledJobFrequencyMillis(BATCH2_MAINTENANCE_MILLIS);
        }
        return bean;
      }
    };
  }

  @Bean
  public PartitionSettings partitionSettings() {
    return new PartitionSettings();
  }

  @Bean
  @Primary
  public LocalContainerEntityManagerFactoryBean entityManagerFactory(
      ConfigurableListableBeanFactory beanFactory,
      FhirContext fhirContext,
      JpaStorageSettings storageSettings,
      SandboxDatabase database) {
    LocalContainerEntityManagerFactoryBean factory =
        HapiEntityManagerFactoryUtil.newEntityManagerFactory(
            beanFactory, fhirContext, storageSettings);
    factory.setPersistenceUnitName("HAPI_SANDBOX_PU");
    factory.setDataSource(database.dataSource());
    Properties jpa = new Properties();
    jpa.putAll(database.jpaProperties());
    // Creates the schema in an empty database at the first start, and leaves an existing one
    // (PostgreSQL, or H2 files) as it is: the sandbox never migrates between HAPI versions.
    jpa.put("hibernate.hbm2ddl.auto", "update");
    jpa.put("hibernate.search.enabled", "false");
    jpa.put("hibernate.format_sql", "false");
    jpa.put("hibernate.show_sql", "false");
    factory.setJpaProperties(jpa);
    return factory;
  }

  @Bean
  @Primary
  public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
    return new JpaTransactionManager(entityManagerFactory);
  }

  /**
   * Binary content stored outside its resource (large attachments, packages) goes into the
   * database, whichever it is: it lives exactly as long as the resources that point at it.
   */
  @Bean
  public IBinaryStorageSvc binaryStorageSvc() {
    return new DatabaseBinaryContentStorageSvcImpl();
  }
}
